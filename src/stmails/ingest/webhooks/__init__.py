"""stmails.ingest.webhooks."""
