"""The `kb` command line: a thin layer over `kb_service`."""
