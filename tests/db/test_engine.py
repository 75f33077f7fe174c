"""Engine settings and portable column types."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session

from stmails.db.engine import (
    BULK_CACHE_KIB,
    BULK_WAL_PAGES,
    DEFAULT_CACHE_KIB,
    DEFAULT_WAL_PAGES,
    POSTGRES_TCP,
    make_engine,
    normalize_url,
    use_bulk_writes,
)
from stmails.db.models import Bounce, Subscriber, Suppression


def test_sqlite_connections_use_wal_and_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0


def test_postgresql_urls_get_the_psycopg3_driver() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def _connect_arguments(url: str) -> dict[str, Any]:
    """The arguments a PostgreSQL engine made by make_engine(url) hands to psycopg.connect."""
    engine = make_engine(url)
    seen: dict[str, Any] = {}

    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise RuntimeError("captured")

    event.listen(engine, "do_connect", capture)
    with pytest.raises(RuntimeError, match="captured"):
        engine.connect()
    engine.dispose()
    return seen


def test_postgresql_connections_get_tcp_timeouts_unless_the_url_sets_them() -> None:
    # A failed primary behind a DNS name sends no reset: without these a pooled connection
    # would wait on it for the kernel's retransmissions (docs/deployment.md, failover).
    given = _connect_arguments("postgresql://u@127.0.0.1:1/db")
    assert {key: given[key] for key in POSTGRES_TCP} == POSTGRES_TCP
    assert POSTGRES_TCP["tcp_user_timeout"] <= 30_000 and POSTGRES_TCP["keepalives"] == 1
    given = _connect_arguments("postgresql://u@127.0.0.1:1/db?connect_timeout=3")
    assert given["connect_timeout"] == "3" and given["tcp_user_timeout"] == 20_000


def test_a_postgresql_server_that_never_answers_fails_the_connection_in_time() -> None:
    # A listening socket that never answers (the handshake completes in the kernel's backlog):
    # connecting gives up after connect_timeout instead of waiting for ever.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql://u@127.0.0.1:{port}/db?connect_timeout=2")
        started = time.monotonic()
        with pytest.raises(OperationalError):
            engine.connect()
        engine.dispose()
    assert time.monotonic() - started < 10


def test_timestamps_come_back_aware_in_utc(session: Session) -> None:
    oslo = timezone(timedelta(hours=2))
    sub = Subscriber(email="t@example.org", created_at=datetime(2026, 5, 1, 12, 0, tzinfo=oslo))
    session.add(sub)
    session.commit()
    session.expire_all()
    got = session.get(Subscriber, sub.id)
    assert got is not None
    assert got.created_at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert got.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(session: Session) -> None:
    session.add(Subscriber(email="n@example.org", created_at=datetime(2026, 5, 1, 12, 0)))
    with pytest.raises(StatementError, match="timezone-aware"):
        session.commit()


def test_emails_are_unique_whatever_their_case(session: Session) -> None:
    session.add(Subscriber(email="Ana@Example.org"))
    session.commit()
    session.add(Subscriber(email="ana@example.ORG"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_json_columns_round_trip(session: Session) -> None:
    sub = Subscriber(email="j@example.org", attribs={"city": "Oslo", "n": [1, 2]})
    session.add(sub)
    session.commit()
    session.expire_all()
    assert session.scalars(select(Subscriber.attribs)).one() == {"city": "Oslo", "n": [1, 2]}


def test_deleting_a_subscriber_keeps_its_bounces(session: Session) -> None:
    sub = Subscriber(email="d@example.org")
    session.add(sub)
    session.flush()
    session.add(
        Bounce(
            subscriber_id=sub.id,
            email="d@example.org",
            type="hard",
            effective_type="hard",
            source="api",
            dedup_key="api:1",
            count_key="day:2026-01-01",
        )
    )
    session.commit()
    session.delete(sub)
    session.commit()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Bounce)) == 1
    assert session.scalars(select(Bounce.subscriber_id)).one() is None


def test_enumerated_columns_and_the_suppression_scope_are_checked(session: Session) -> None:
    session.add(Subscriber(email="s@example.org", status="enabled"))
    session.commit()
    session.add(Subscriber(email="t@example.org", status="asleep"))
    with pytest.raises(IntegrityError, match="status"):
        session.commit()
    session.rollback()
    for scope, list_id in (("global", 3), ("list", 0)):
        session.add(
            Suppression(domain="example.org", scope=scope, list_id=list_id, reason="manual")
        )
        with pytest.raises(IntegrityError, match="scope_list_id"):
            session.commit()
        session.rollback()


def test_suppression_hashes_are_stored_as_32_bytes_and_read_as_hex(session: Session) -> None:
    session.add(Suppression(email_hash="AB" * 32, reason="manual"))
    session.commit()
    raw = session.execute(text("SELECT email_hash FROM suppressions")).scalar_one()
    assert bytes(raw) == b"\xab" * 32
    assert session.scalars(select(Suppression.email_hash)).one() == "ab" * 32
    with pytest.raises(StatementError, match="not a sha256 hex digest"):
        session.scalars(select(Suppression).where(Suppression.email_hash == "ab"))


def test_bulk_write_settings_last_until_the_connection_returns_to_the_pool(
    engine: Engine,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    pragmas = ("PRAGMA cache_size", "PRAGMA wal_autocheckpoint")
    # An engine of its own with one pooled connection: the shared engine's pool may hold
    # other idle connections (from earlier tests), and it hands them out in turn.
    engine = make_engine(engine.url, pool_size=1)
    with engine.connect() as conn:
        bulk_connection = conn.connection.dbapi_connection
        use_bulk_writes(conn)
        assert [conn.exec_driver_sql(p).scalar() for p in pragmas] == [
            -BULK_CACHE_KIB,
            BULK_WAL_PAGES,
        ]
    with engine.connect() as conn:
        # The same pooled connection, given back with the defaults.
        assert conn.connection.dbapi_connection is bulk_connection
        assert [conn.exec_driver_sql(p).scalar() for p in pragmas] == [
            -DEFAULT_CACHE_KIB,
            DEFAULT_WAL_PAGES,
        ]
    engine.dispose()
