"""Alembic migrations of the schema, run by `stmails db migrate` and on `stmails serve`."""
