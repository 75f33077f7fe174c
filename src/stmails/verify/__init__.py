"""stmails.verify."""
