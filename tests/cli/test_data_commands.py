"""`stmails db migrate`, `stmails users create-api` and `stmails bounces reapply`."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app
from stmails.core.event import Event
from stmails.db.engine import make_engine, session_factory, transaction
from stmails.db.migrate import head_revision
from stmails.db.models import Subscriber
from stmails.services import bounces, settings, users


def test_migrate_then_create_an_api_user(database: str) -> None:
    runner = CliRunner()
    migrated = runner.invoke(app, ["db", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert f"database at revision {head_revision()}" in migrated.output
    made = runner.invoke(app, ["users", "create-api", "robot"])
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    engine = make_engine(database)
    try:
        with session_factory(engine)() as session:
            assert users.authenticate_token(session, "robot", token) is not None
    finally:
        engine.dispose()
    again = runner.invoke(app, ["users", "create-api", "robot"])
    assert again.exit_code == 1 and "exists" in again.output


def test_reapply_blocklists_under_a_new_rule(database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    engine = make_engine(database)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(Subscriber(email="a@example.org"))
            settings.set_value(session, "bounce.actions", {"hard": {"count": 1, "action": "none"}})
            bounces.record(
                session,
                Event(
                    source="api",
                    type="hard",
                    email="a@example.org",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                ),
            )
        with transaction(session_factory(engine)) as session:
            settings.set_value(
                session, "bounce.actions", {"hard": {"count": 1, "action": "blocklist"}}
            )
        result = runner.invoke(app, ["bounces", "reapply"])
        assert result.exit_code == 0, result.output
        assert "1 bounces" in result.output and "blocklist 1" in result.output
        with session_factory(engine)() as session:
            sub = session.query(Subscriber).one()
            assert sub.status == "blocklisted"
    finally:
        engine.dispose()
