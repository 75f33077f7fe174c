"""stmails.web."""
