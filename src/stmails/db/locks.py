"""Locks between processes that share a PostgreSQL database (advisory locks).

SQLite needs none of these: one host's processes already take turns at its single write lock,
so on SQLite every lock here is granted at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

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
