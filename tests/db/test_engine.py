"""Engine settings and portable column types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from stmails.db.engine import (
    BULK_CACHE_KIB,
    BULK_WAL_PAGES,
    DEFAULT_CACHE_KIB,
    DEFAULT_WAL_PAGES,
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
