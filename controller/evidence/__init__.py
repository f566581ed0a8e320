"""Mission video recorded as evidence: segments without re-encoding, telemetry sidecars, signed manifests."""
