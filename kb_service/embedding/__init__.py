"""Dense encoders behind one Protocol, and the query embedder's token cache."""
