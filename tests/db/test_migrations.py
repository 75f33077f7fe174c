"""The Alembic migration builds exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SAWarning

from stmails.db.engine import make_engine
from stmails.db.migrate import current_revision, head_revision, upgrade
from stmails.db.models import Base


def _sqlite_indexes(eng: Engine) -> list[tuple[str, str, str]]:
    # SQLAlchemy cannot reflect expression indexes on SQLite; the stored DDL is exact anyway.
    with eng.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT name, tbl_name, sql FROM sqlite_master"
                " WHERE type = 'index' AND sql IS NOT NULL"
            )
        )
        return sorted((r[0], r[1], " ".join(str(r[2]).lower().split())) for r in rows)


def schema_of(eng: Engine) -> dict[str, Any]:
    """Everything that matters about the schema, in a form two databases can be compared by."""
    with warnings.catch_warnings():
        # SQLite's expression indexes are compared through their DDL below instead.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        return _schema_of(eng)


def _schema_of(eng: Engine) -> dict[str, Any]:
    insp = inspect(eng)
    tables: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        if name == "alembic_version":
            continue
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"].compile(eng.dialect)), c["nullable"])
                for c in insp.get_columns(name)
            ],
            "pk": insp.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in insp.get_foreign_keys(name)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(name)
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split()))
                for c in insp.get_check_constraints(name)
            ),
        }
        if eng.dialect.name != "sqlite":
            tables[name]["indexes"] = sorted(
                (
                    i["name"],
                    tuple(str(c) for c in i["column_names"]),
                    tuple(i.get("expressions") or ()),
                    bool(i["unique"]),
                )
                for i in insp.get_indexes(name)
            )
    if eng.dialect.name == "sqlite":
        tables["<indexes>"] = _sqlite_indexes(eng)
    return tables


def test_migration_builds_the_same_schema_as_the_models(
    fresh_database_url: Callable[[], str],
) -> None:
    from_models = make_engine(fresh_database_url())
    migrated = make_engine(fresh_database_url())
    try:
        Base.metadata.create_all(from_models)
        upgrade(migrated)
        expected = schema_of(from_models)
        got = schema_of(migrated)
        assert set(got) == set(expected)
        for table in expected:
            assert got[table] == expected[table], table
        assert "subscribers" in got
    finally:
        from_models.dispose()
        migrated.dispose()


def test_upgrade_is_idempotent_and_records_the_head(
    fresh_database_url: Callable[[], str],
) -> None:
    eng = make_engine(fresh_database_url())
    try:
        assert current_revision(eng) is None
        upgrade(eng)
        upgrade(eng)
        head = head_revision()
        assert head is not None and head.startswith("00")
        assert current_revision(eng) == head
    finally:
        eng.dispose()


def test_ui_sessions_migration_keeps_existing_users(
    fresh_database_url: Callable[[], str],
) -> None:
    """A 0.1.0 database with a user gains the profile columns with empty values."""
    eng = make_engine(fresh_database_url())
    try:
        upgrade(eng, "0001_initial")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO roles (name, permissions, created_at, updated_at)"
                    " VALUES ('r', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO users (username, type, status, created_at, role_id)"
                    " VALUES ('old', 'admin', 'enabled', CURRENT_TIMESTAMP,"
                    " (SELECT id FROM roles WHERE name = 'r'))"
                )
            )
        upgrade(eng, "0003_ui_sessions")
        with eng.connect() as conn:
            row = conn.execute(
                text("SELECT name, email, locale, totp_secret FROM users WHERE username = 'old'")
            ).one()
        assert tuple(row) == ("", "", "", None)
    finally:
        eng.dispose()


def _triggers(eng: Engine) -> set[str]:
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        else:
            rows = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                    " AND tgrelid::regclass::text IN ('bounces', 'campaign_sends', 'campaigns')"
                )
            )
        return {row[0] for row in rows}


def test_migration_and_models_make_the_same_analytics_triggers(
    fresh_database_url: Callable[[], str],
) -> None:
    from_models = make_engine(fresh_database_url())
    migrated = make_engine(fresh_database_url())
    try:
        Base.metadata.create_all(from_models)
        upgrade(migrated)
        made = _triggers(from_models)
        assert made == _triggers(migrated)
        assert {"analytics_sends_insert", "analytics_bounces_delete"} <= made
    finally:
        from_models.dispose()
        migrated.dispose()


def test_the_analytics_migration_counts_the_history_stored_before_it(
    fresh_database_url: Callable[[], str],
) -> None:
    eng = make_engine(fresh_database_url())
    try:
        upgrade(eng, "0001_initial")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, uuid, email, name, attribs, status, created_at,"
                    " updated_at) VALUES (1, 'u1', 'Ana@Gmail.COM', '', '{}', 'enabled',"
                    " :t, :t), (2, 'u2', 'bo@yahoo.com', '', '{}', 'enabled', :t, :t)"
                ),
                {"t": "2026-03-02 09:00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, uuid, name, subject, from_email, body,"
                    " content_type, status, tags, headers, messenger, to_send, sent, skipped,"
                    " failed, last_subscriber_id, created_at, updated_at) VALUES (1, 'c1', 'C',"
                    " 'S', '', '', 'html', 'finished', '[]', '[]', 'email', 2, 2, 0, 0, 2, :t, :t)"
                ),
                {"t": "2026-03-02 09:00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO campaign_sends (campaign_id, subscriber_id, status, reason,"
                    " message_id, sent_at) VALUES (1, 1, 'sent', '', '', :t),"
                    " (1, 2, 'failed', 'hard_bounce: 550 no such user', '', :t)"
                ),
                {"t": "2026-03-02 09:30:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO bounces (subscriber_id, email, email_hash, campaign_id,"
                    " campaign_uuid, type, effective_type, reason, status, replycode, diagnostic,"
                    " feedback_type, source, dedup_key, count_key, meta, created_at, recorded_at)"
                    " VALUES (2, 'bo@yahoo.com', '', 1, 'c1', 'hard', 'hard', 'user_unknown', '',"
                    " '', '', '', 'smtp', 'k1', 'c1', '{}', :t, :t)"
                ),
                {"t": "2026-03-02 09:31:00"},
            )
        upgrade(eng)
        with eng.connect() as conn:
            hourly = conn.execute(
                text("SELECT campaign_id, accepted, refused, hard FROM analytics_hourly")
            ).all()
            domains = conn.execute(
                text("SELECT domain, accepted, refused, hard FROM analytics_domains ORDER BY 1")
            ).all()
            months = conn.execute(
                text(
                    "SELECT domain, month, accepted, refused, hard FROM analytics_domain_months"
                    " ORDER BY 1"
                )
            ).all()
            pending = conn.execute(text("SELECT count(*) FROM analytics_changes")).scalar()
            domain = conn.execute(text("SELECT domain FROM bounces")).scalar()
        assert [tuple(row) for row in hourly] == [(1, 1, 1, 1)]
        assert [tuple(row) for row in domains] == [("gmail.com", 1, 0, 0), ("yahoo.com", 0, 1, 1)]
        # Migration 0016 adds them up per month (2026-03: month 674 since 1970-01).
        assert [tuple(row) for row in months] == [
            ("gmail.com", 674, 1, 0, 0),
            ("yahoo.com", 674, 0, 1, 1),
        ]
        assert pending == 0 and domain == "yahoo.com"
    finally:
        eng.dispose()


def test_upgrading_a_populated_database_keeps_every_row(
    fresh_database_url: Callable[[], str],
) -> None:
    """A 0.1.0 database with rows that refer to each other keeps them all through every later
    migration, including the SQLite table rebuilds of batch migrations (which, with foreign keys
    enforced, used to cascade: a campaign's rebuild deleted its sends)."""
    eng = make_engine(fresh_database_url())
    try:
        upgrade(eng, "0001_initial")
        stamp = {"t": "2026-03-02 09:00:00"}
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO lists (id, uuid, name, type, optin, tags, description,"
                    " created_at, updated_at) VALUES (1, 'l1', 'L', 'public', 'single', '[]', '',"
                    " :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, uuid, email, name, attribs, status, created_at,"
                    " updated_at) VALUES (1, 'u1', 'a@example.com', '', '{}', 'enabled', :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO subscriber_lists (subscriber_id, list_id, status, meta,"
                    " created_at, updated_at) VALUES (1, 1, 'confirmed', '{}', :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, uuid, name, subject, from_email, body,"
                    " content_type, status, tags, headers, messenger, to_send, sent, skipped,"
                    " failed, last_subscriber_id, created_at, updated_at) VALUES (1, 'c1', 'C',"
                    " 'S', '', '', 'html', 'finished', '[]', '[]', 'email', 1, 1, 0, 0, 1, :t, :t)"
                ),
                stamp,
            )
            conn.execute(
                text(
                    "INSERT INTO campaign_sends (campaign_id, subscriber_id, status, reason,"
                    " message_id, sent_at) VALUES (1, 1, 'sent', '', '', :t)"
                ),
                stamp,
            )
        tables = ("lists", "subscribers", "subscriber_lists", "campaigns", "campaign_sends")
        upgrade(eng)
        with eng.connect() as conn:
            counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        assert counts == dict.fromkeys(tables, 1)
    finally:
        eng.dispose()


def test_0008_send_errors_keeps_existing_campaigns(
    fresh_database_url: Callable[[], str],
) -> None:
    eng = make_engine(fresh_database_url())
    try:
        upgrade(eng, "0001_initial")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaigns (uuid, name, subject, from_email, body, content_type,"
                    " status, tags, headers, messenger, to_send, sent, skipped, failed,"
                    " last_subscriber_id, created_at, updated_at) VALUES ('u-1', 'Old', 's', '',"
                    " 'b', 'plain', 'paused', '[]', '[]', 'email', 5, 3, 0, 0, 3,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        upgrade(eng, "0008_send_errors")
        with eng.connect() as conn:
            row = conn.execute(
                text("SELECT sent, send_errors, last_errors, pause_reason FROM campaigns")
            ).one()
        assert (row[0], row[1], row[3]) == (3, 0, "")
        assert row[2] in ([], "[]")
    finally:
        eng.dispose()
