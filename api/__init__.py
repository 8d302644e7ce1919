"""HTTP entry point: a thin FastAPI layer over `kb_service`."""
