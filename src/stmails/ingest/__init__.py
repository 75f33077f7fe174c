"""stmails.ingest."""
