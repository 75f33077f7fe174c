"""stmails.db."""
