"""HTTP and WebSocket API (FastAPI). OpenAPI at /docs."""
