"""Core library of the SOP knowledge-base search service: models, settings, errors, ids, text tools,
encoders, the vector store, search, trainer tools and the service database.

Nothing in this package imports `ingest`, `api` or `cli`.
"""
