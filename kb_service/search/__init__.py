"""The read path: hybrid search over a published generation, its SOP catalogue, chat answers."""
