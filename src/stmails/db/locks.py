"""Locks between processes that share a PostgreSQL database (advisory locks).

SQLite needs none of these: one host's processes already take turns at its single write lock,
so on SQLite every lock here is granted at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

# The first key of the lock that gives the senders of one campaign turns at picking a batch
# (the second key is the campaign's id).
CAMPAIGN_BATCH_LOCK = 0x57A1


@contextmanager
def turn(engine: Engine, kind: int, key: int) -> Iterator[None]:
    """Holds PostgreSQL's advisory lock (`kind`, `key`) until the block ends, waiting for it.

    The lock lives on a connection of its own, so the block's transactions commit as usual
    while it is held; it is released when the block ends, and by the server if this process
    dies (its connection closes).
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:kind, :key)"), {"kind": kind, "key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(:kind, :key)"), {"kind": kind, "key": key}
            )
            connection.commit()


@contextmanager
def try_hold(session: Session, key: int) -> Iterator[bool | None]:
    """Tries PostgreSQL's advisory lock `key` on the session's connection without waiting;
    yields whether it was granted and releases it when the block ends. On another database it
    yields None: the caller takes a lock of its own (SQLite's processes share one host)."""
    if session.get_bind().dialect.name != "postgresql":
        yield None
        return
    got = bool(session.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
    try:
        yield got
    finally:
        if got:
            session.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            session.commit()
