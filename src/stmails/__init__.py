"""stmails: self-hosted email deliverability."""

__version__ = "0.1.0"
