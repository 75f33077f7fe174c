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
        assert current_revision(eng) == head_revision()
        assert head_revision() is not None
    finally:
        eng.dispose()


def test_0002_send_errors_keeps_existing_campaigns(
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
        upgrade(eng, "0002_send_errors")
        with eng.connect() as conn:
            row = conn.execute(
                text("SELECT sent, send_errors, last_errors, pause_reason FROM campaigns")
            ).one()
        assert (row[0], row[1], row[3]) == (3, 0, "")
        assert row[2] in ([], "[]")
    finally:
        eng.dispose()
