"""The service database (SQLite): query log, feedback and SOP versions."""
