"""stmails.cli."""
