"""Alembic revision files: `0001_initial` until the first release."""
