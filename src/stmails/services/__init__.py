"""stmails.services."""
