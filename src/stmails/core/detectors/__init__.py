"""stmails.core.detectors."""
