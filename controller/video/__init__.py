"""Live video: WebRTC ingest from drones, relay to viewers without re-encoding, decode-once taps."""
