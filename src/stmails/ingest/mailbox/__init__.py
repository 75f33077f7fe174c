"""stmails.ingest.mailbox."""
