"""stmails.workers."""
