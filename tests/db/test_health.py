"""db.health: the database answers of the health checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from stmails.db.engine import make_engine, session_factory
from stmails.db.health import ping, stored_revisions
from stmails.db.migrate import head_revision, upgrade


def test_ping_and_revisions_of_a_migrated_database(
    fresh_database_url: Callable[[], str],
) -> None:
    engine = make_engine(fresh_database_url())
    try:
        with session_factory(engine)() as session:
            ping(session)
            with pytest.raises(SQLAlchemyError):
                stored_revisions(session)
        upgrade(engine)
        with session_factory(engine)() as session:
            assert stored_revisions(session) == [head_revision()]
    finally:
        engine.dispose()


def test_ping_raises_when_the_database_is_unreachable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'stmails.db'}")
    try:
        with session_factory(engine)() as session, pytest.raises(SQLAlchemyError):
            ping(session)
    finally:
        engine.dispose()
