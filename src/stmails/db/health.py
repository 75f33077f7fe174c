"""The database's answers to the health checks (`web.api.health`): does it answer at all, and
at which migration revision its schema stands.

They live here, beside the engine and the migrations, so that the web layer builds no SQL.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ping(session: Session) -> None:
    """Run `SELECT 1`: returns when the database answers, raises what the driver raised
    (a SQLAlchemyError) when it does not."""
    session.execute(text("SELECT 1"))


def stored_revisions(session: Session) -> list[str]:
    """The revisions recorded in `alembic_version` (one once migrated); raises a
    SQLAlchemyError when the table is missing (the database was never migrated)."""
    return list(session.scalars(text("SELECT version_num FROM alembic_version")).all())
