"""Core library of the SOP knowledge-base search service: parsing, chunking, indexing and search.

Nothing in this package knows about HTTP or the command line.
"""
