"""db.dialect, db.upsert.dialect_insert and upsert_rows, and db.locks.try_hold: the same
answers on SQLite and PostgreSQL (the PostgreSQL pass runs them under scripts/with-postgres.sh)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

import stmails
from stmails.db import dialect
from stmails.db.locks import try_hold
from stmails.db.models import Subscriber, SubscriberHygiene
from stmails.db.upsert import dialect_insert, upsert_rows
from stmails.services import subscribers


def test_least_and_is_sqlite(session: Session, engine: Engine) -> None:
    name = engine.dialect.name
    assert dialect.name_of(session) == dialect.name_of(engine) == name
    assert dialect.is_sqlite(session) is (name == "sqlite")
    assert session.scalar(select(dialect.least(session, literal(7), literal(3), literal(5)))) == 3


def test_snapshot_options_only_where_needed(engine: Engine) -> None:
    options = dialect.snapshot_options(engine)
    if engine.dialect.name == "postgresql":
        assert options == {"isolation_level": "REPEATABLE READ"}
    else:
        assert options == {}


def test_database_info(session: Session, engine: Engine) -> None:
    kind, version, size = dialect.database_info(session)
    assert kind == engine.dialect.name
    assert version[:1].isdigit()
    assert size > 0


def test_json_text_reads_the_same_on_both(session: Session) -> None:
    sub = subscribers.create(
        session,
        email="j@example.org",
        attribs={"city": "Oslo", "vip": True, "n": 3, "tags": ["a", "b"], "o": {"k": False}},
    )
    session.flush()
    name = dialect.name_of(session)

    def at(*path: str | int) -> Any:
        expr = dialect.json_text(name, Subscriber.attribs, path)
        return session.scalar(select(expr).where(Subscriber.id == sub.id))

    assert at("city") == "Oslo"
    assert at("vip") == "true"
    assert at("n") == "3"
    assert at("tags", 1) == "b"
    assert at("o", "k") == "false"
    assert at("missing") is None


def test_dialect_insert_upserts(session: Session) -> None:
    sub = subscribers.create(session, email="u@example.org")
    session.flush()
    table = cast(Table, SubscriberHygiene.__table__)
    row = {
        "subscriber_id": sub.id,
        "risk_score": 1,
        "risk_level": "low",
        "risk_factors": [],
        "verify_result": "",
        "verify_reasons": [],
        "state": "active",
        "reengage_sent": 0,
    }
    for score in (1, 9):
        statement = dialect_insert(session, table).values({**row, "risk_score": score})
        statement = statement.on_conflict_do_update(
            index_elements=["subscriber_id"], set_={"risk_score": statement.excluded.risk_score}
        )
        session.execute(statement)
    count = session.scalar(select(func.count()).select_from(table))
    assert count == 1
    assert session.scalar(select(table.c.risk_score)) == 9


def test_upsert_rows_inserts_and_updates_only_the_columns_named(session: Session) -> None:
    first = subscribers.create(session, email="a@example.org")
    second = subscribers.create(session, email="b@example.org")
    session.flush()
    table = cast(Table, SubscriberHygiene.__table__)
    columns = (
        "subscriber_id", "risk_score", "risk_level", "risk_factors", "scored_at", "verify_result",
        "verify_reasons", "verified_at", "state", "state_at", "reengage_sent", "reengage_last_at",
    )  # fmt: skip
    at = datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    later = datetime(2030, 2, 1, tzinfo=UTC)
    connection = session.connection()

    def row(sid: int, score: int, when: datetime, result: str) -> tuple[Any, ...]:
        factors = [{"code": "x", "points": score}]
        return (sid, score, "low", factors, when, result, [], None, "active", None, 0, None)

    upsert_rows(
        connection,
        table,
        columns,
        [row(first.id, 1, at, "valid")],
        ("subscriber_id",),
        ("risk_score",),
    )
    # The columns not in the rows are the same for every row: given once, as `fixed`.
    upsert_rows(
        connection,
        table,
        columns[:5],
        [row(first.id, 7, later, "")[:5], row(second.id, 2, later, "")[:5]],
        key=("subscriber_id",),
        update=("risk_score", "risk_factors", "scored_at"),
        fixed=dict(zip(columns[5:], row(0, 0, at, "it's")[5:], strict=True)),
    )
    session.expire_all()
    got = {
        h.subscriber_id: (h.risk_score, h.risk_factors, h.scored_at, h.verify_result)
        for h in session.scalars(select(SubscriberHygiene))
    }
    assert got == {
        # The clash set only the columns to update.
        first.id: (7, [{"code": "x", "points": 7}], later, "valid"),
        second.id: (2, [{"code": "x", "points": 2}], later, "it's"),
    }
    upsert_rows(connection, table, columns, [], ("subscriber_id",), ("risk_score",))
    with pytest.raises(ValueError, match="give the columns"):
        upsert_rows(
            connection,
            table,
            columns[:3],
            [row(first.id, 1, at, "")[:3]],
            ("subscriber_id",),
            ("risk_score",),
        )


def test_try_hold(session_maker: sessionmaker[Session], engine: Engine) -> None:
    with session_maker() as first, try_hold(first, 42) as got:
        if engine.dialect.name != "postgresql":
            assert got is None
            return
        assert got is True
        with session_maker() as second, try_hold(second, 42) as again:
            assert again is False
    with session_maker() as third, try_hold(third, 42) as after:
        assert after is True


def test_no_dialect_named_outside_db() -> None:
    """The rule this module exists for: dialect-specific constructs live in `db/` only."""
    src = Path(stmails.__file__).parent
    offenders = [
        f"{path.relative_to(src)}: {needle}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src).parts[0] != "db"
        for needle in ("dialect.name", "sqlalchemy.dialects", "pg_try_advisory")
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
