"""stmails.core."""
