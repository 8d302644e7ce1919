"""The ingest pipeline on top of `kb_service`: reading and validating SOP files, chunking, embedding and
indexing, incremental publishing of generations, and the wiring of a knowledge base from its settings.

Nothing in this package imports `api` or `cli`.
"""
