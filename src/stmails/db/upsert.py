"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL, in one statement.

Idempotent writes (a bounce by its dedup key, a suppression by its address) use this instead of
a savepoint around an ORM insert: one round trip, and on PostgreSQL a concurrent insert of the
same key waits for the other transaction and then does nothing, without an error to recover from.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_or_ignore(
    session: Session, table: Table, values: Mapping[str, Any], returning: Column[Any]
) -> Any | None:
    """Insert one row unless it clashes with a unique constraint; the new row's `returning`
    column, or None when an existing row made the insert do nothing."""
    statement = _statement(session.get_bind().dialect.name, table, (returning,))
    return session.execute(statement, dict(values)).scalar()


def insert_many_or_ignore(
    session: Session | Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[Column[Any]],
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys), skipping those that clash with a unique
    constraint; the `returning` columns of the rows actually inserted, in no particular order.

    `session` may be a Session's Connection, which skips the ORM's per-statement work."""
    if not rows:
        return []
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    statement = _statement(dialect.name, table, tuple(returning))
    return [tuple(r) for r in session.execute(statement, [dict(r) for r in rows])]


@functools.cache
def _statement(dialect: str, table: Table, returning: tuple[Column[Any], ...]) -> Any:
    # Built once per table: the values travel as parameters, so the compiled form is reused.
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise NotImplementedError(f"insert_or_ignore does not support {dialect}")
    return statement.on_conflict_do_nothing().returning(*returning)
