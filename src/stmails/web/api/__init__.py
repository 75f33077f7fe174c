"""stmails.web.api."""
