"""The hot-path statement helpers: list parameters, prepared statements, raw row inserts.

Each is checked against what SQLAlchemy's own execution gives on the same database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, bindparam, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import session_factory
from stmails.db.in_list import in_list
from stmails.db.models import Bounce, Setting, Subscriber, Suppression
from stmails.db.prepared import Prepared, PreparedIn, run
from stmails.db.types import email_hash
from stmails.db.upsert import insert_rows_or_ignore

BOUNCES = cast(Table, Bounce.__table__)
# Every column but the id, deliberately not in the table's order.
COLUMNS = ("dedup_key", "meta", "created_at", "recorded_at", "email", "email_hash", "type")
COLUMNS += ("effective_type", "source", "count_key", "subscriber_id", "campaign_id")
COLUMNS += ("campaign_uuid", "reason", "status", "replycode", "diagnostic", "feedback_type")


def _subscribers(session: Session, *emails: str) -> list[int]:
    added = [Subscriber(email=email) for email in emails]
    session.add_all(added)
    session.commit()
    return [s.id for s in added]


def test_in_list_matches_the_items_given_and_nothing_for_an_empty_list(session: Session) -> None:
    ids = _subscribers(session, "Ana@Example.org", "bo@example.org", "cy@example.org")
    by_address = select(Subscriber.id).where(in_list(func.lower(Subscriber.email), "emails"))
    by_id = select(Subscriber.email).where(in_list(Subscriber.id, "ids")).order_by(Subscriber.id)
    found = session.scalars(by_address, {"emails": ["ana@example.org", "cy@example.org", "x@y"]})
    assert sorted(found) == [ids[0], ids[2]]
    assert list(session.scalars(by_address, {"emails": []})) == []
    assert list(session.scalars(by_id, {"ids": ids[1:]})) == ["bo@example.org", "cy@example.org"]


def test_in_list_refuses_a_binary_column() -> None:
    # Suppression keys are raw digests: a JSON list of hex strings would silently match nothing.
    with pytest.raises(TypeError, match="binary"):
        in_list(Suppression.email_hash, "hashes")


def test_prepared_in_finds_binary_keys_across_slices(session: Session) -> None:
    addresses = [f"u{n}@example.org" for n in range(10)]
    session.add_all(
        Suppression(email=a, email_hash=email_hash(a), reason="manual") for a in addresses[::3]
    )
    session.flush()
    lookup = PreparedIn(
        lambda keyed: select(Suppression.email).where(keyed), Suppression.email_hash, width=4
    )
    # Ten keys: slices of 4, 4 and 2 (the last one padded), hex keys bound as digests.
    found = lookup.rows(session.connection(), [email_hash(a) for a in addresses])
    assert sorted(email for (email,) in found) == sorted(addresses[::3])
    assert lookup.rows(session.connection(), []) == []


def test_a_prepared_select_returns_what_sqlalchemy_returns(session: Session) -> None:
    oslo = timezone(timedelta(hours=2))
    ids = _subscribers(session, "a@example.org", "b@example.org")
    for index, subscriber_id in enumerate(ids):
        session.add(
            Bounce(
                subscriber_id=subscriber_id,
                email=f"{index}@example.org",
                type="soft",
                effective_type="soft",
                source="api",
                dedup_key=f"api:{index}",
                count_key="day:2026-05-01",
                meta={"n": index, "text": "é"},
                created_at=datetime(2026, 5, 1, 12, index, tzinfo=oslo),
            )
        )
    session.add(Setting(key="bounce.enabled", value=True))
    session.commit()
    query = (
        select(Bounce.id, Bounce.meta, func.max(Bounce.created_at), Bounce.dedup_key)
        .where(
            in_list(Bounce.subscriber_id, "ids"),
            Bounce.created_at >= bindparam("since", type_=Bounce.created_at.type),
            Bounce.source == "api",
        )
        .group_by(Bounce.id, Bounce.meta, Bounce.dedup_key)
        .order_by(Bounce.id)
    )
    parameters = {"ids": ids, "since": datetime(2026, 5, 1, 10, 1, tzinfo=UTC)}
    expected = [tuple(row) for row in session.execute(query, parameters)]
    got = Prepared(query).rows(session.connection(), parameters)
    assert got == expected
    assert len(got) == 1 and got[0][1] == {"n": 1, "text": "é"}
    assert got[0][2] == datetime(2026, 5, 1, 10, 1, tzinfo=UTC)
    settings = Prepared(select(Setting.value).where(Setting.key == "bounce.enabled"))
    assert settings.rows(session.connection()) == [(True,)]


def test_prepared_refuses_expanding_lists(session: Session) -> None:
    query = Prepared(select(Subscriber.id).where(Subscriber.id.in_([1, 2])))
    with pytest.raises(ValueError, match="expanding"):
        query.rows(session.connection())


def _row(key: str, when: datetime, meta: dict[str, Any], source: Any = "api") -> tuple[Any, ...]:
    head = (key, meta, when, when, "a@example.org", "h", "soft", "soft", source, "day:x")
    return (*head, None, None, "", "mailboxfull", "5.1.1", "", "diag", "")


def test_insert_rows_or_ignore_stores_new_rows_and_skips_known_keys(session: Session) -> None:
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    first = insert_rows_or_ignore(
        session.connection(), BOUNCES, COLUMNS, [_row("k1", when, {"a": [1]})], ("dedup_key",)
    )
    assert first == [("k1",)]
    again = insert_rows_or_ignore(
        session.connection(),
        BOUNCES,
        COLUMNS,
        [_row("k1", when, {}), _row("k2", when + timedelta(seconds=1), {"b": None})],
        ("dedup_key", "id"),
    )
    assert [key for key, _ in again] == ["k2"]
    session.commit()
    stored = {b.dedup_key: b for b in session.scalars(select(Bounce))}
    assert stored["k1"].meta == {"a": [1]} and stored["k1"].created_at == when
    assert (stored["k1"].reason, stored["k1"].status, stored["k1"].source) == (
        "mailboxfull",
        "5.1.1",
        "api",
    )
    assert stored["k2"].id == again[0][1] and stored["k2"].meta == {"b": None}


def test_insert_rows_or_ignore_wants_every_defaulted_column(session: Session) -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="reason"):
        insert_rows_or_ignore(
            session.connection(), BOUNCES, COLUMNS[:-5], [_row("k", when, {})[:-5]], ("id",)
        )
    with pytest.raises(ValueError, match="no column nonsense"):
        insert_rows_or_ignore(
            session.connection(), BOUNCES, (*COLUMNS, "nonsense"), [(*_row("k", when, {}), 1)], ()
        )


def test_driver_errors_are_raised_as_sqlalchemy_errors(session: Session) -> None:
    query = Prepared(select(Subscriber.id).where(Subscriber.email == bindparam("email")))
    with pytest.raises(KeyError):
        query.rows(session.connection(), {})
    session.rollback()
    when = datetime(2026, 5, 1, tzinfo=UTC)
    # A NOT NULL column left NULL: the driver's integrity error, as SQLAlchemy's.
    with pytest.raises(IntegrityError):
        insert_rows_or_ignore(
            session.connection(), BOUNCES, COLUMNS, [_row("k", when, {}, source=None)], ("id",)
        )


def test_a_locked_sqlite_database_is_an_operational_error(
    engine: Engine, session_maker: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    holder = session_maker()
    holder.execute(Subscriber.__table__.insert(), {"email": "lock@example.org"})
    # A reading transaction (deferred BEGIN) that then writes meets the holder's lock.
    reader = session_factory(engine, readonly=True)()
    connection = reader.connection()
    try:
        connection.exec_driver_sql("PRAGMA busy_timeout=50")
        with pytest.raises(OperationalError, match="locked"):
            insert_rows_or_ignore(
                connection, BOUNCES, COLUMNS, [_row("k9", datetime.now(UTC), {})], ("id",)
            )
    finally:
        # The shortened timeout must not go back to the pool with this connection.
        connection.invalidate()
        reader.close()
        holder.rollback()
        holder.close()


def test_run_converts_only_the_columns_given_a_conversion(session: Session) -> None:
    connection = session.connection()
    rows = run(
        connection, "SELECT 1, 'two', 3 UNION ALL SELECT 4, 'five', 6", (), (None, str.upper, None)
    )
    assert rows == [(1, "TWO", 3), (4, "FIVE", 6)]
    assert run(connection, "SELECT 1, 'two'", (), (None, None)) == [(1, "two")]
    with pytest.raises(ValueError, match="3 were expected"):
        run(connection, "SELECT 1, 'two'", (), (None, str.upper, None))
