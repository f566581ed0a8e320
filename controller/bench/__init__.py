"""Benchmarks behind `dronefleet bench NAME --json` (JSON to stdout, summary and progress to stderr)."""
