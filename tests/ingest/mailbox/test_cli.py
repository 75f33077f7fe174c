"""`stmails bounces scan` against Dovecot, and `stmails webhooks replay`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app
from stmails.config import load_settings
from stmails.db.engine import session_factory
from stmails.db.migrate import open_database
from stmails.services import settings as settings_service

from ..webhooks.contract import DATA
from .conftest import Mailbox
from .messages import dsn, human_reply

pytestmark = pytest.mark.integration


@pytest.fixture
def database(
    fresh_database_url: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    url = fresh_database_url()
    monkeypatch.setenv("STMAILS_DATABASE_URL", url)
    monkeypatch.setenv("STMAILS_DATA_DIR", str(tmp_path))
    return url


def configure(mailbox: Mailbox) -> None:
    config = mailbox.config("imap")
    entry = {
        "name": "cli-box",
        "type": "imap",
        "host": config.host,
        "port": config.port,
        "tls_mode": "none",
        "username": config.username,
        "password": config.password,
        "scan_interval": "1m",
    }
    engine = open_database(load_settings())
    try:
        with session_factory(engine)() as session:
            settings_service.set_value(session, "bounce.mailboxes", [entry])
            session.commit()
    finally:
        engine.dispose()


def test_scan_prints_a_summary_and_dry_run_changes_nothing(mailbox: Mailbox, database: str) -> None:
    configure(mailbox)
    mailbox.append(dsn("kim@dest.example", subject="cli-bounce"), human_reply("cli-reply"))
    runner = CliRunner()
    dry = runner.invoke(app, ["bounces", "scan", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "cli-box" in dry.stdout and len(mailbox.subjects()) == 2
    real = runner.invoke(app, ["bounces", "scan", "--mailbox", "cli-box"])
    assert real.exit_code == 0, real.output
    row = next(line for line in real.stdout.splitlines() if "cli-box" in line)
    assert [cell.strip() for cell in row.strip("│┃ ").split("│")][1:] == [
        "2",
        "1",
        "0",
        "1",
        "0",
        "0",
    ]
    assert mailbox.subjects() == ["cli-reply"]
    unknown = runner.invoke(app, ["bounces", "scan", "--mailbox", "nope"])
    assert unknown.exit_code != 0


def test_replay_prints_the_events_of_a_captured_payload() -> None:
    result = CliRunner().invoke(
        app, ["webhooks", "replay", "sendgrid", str(DATA / "sendgrid_events.json")]
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["email"], e["type"]) for e in events][:2] == [
        ("nobody@example.com", "hard"),
        ("blocked@example.com", "soft"),
    ]
    assert events[0]["dedup_key"] == "sendgrid:6g4ZI7SA-xmRDv57GoPIPw=="
    ses = CliRunner().invoke(
        app, ["webhooks", "replay", "ses", str(DATA / "ses_bounce_notification.json")]
    )
    assert ses.exit_code == 0 and len(ses.stdout.splitlines()) == 2
    bad = CliRunner().invoke(
        app, ["webhooks", "replay", "nope", str(DATA / "ses_bounce_notification.json")]
    )
    assert bad.exit_code != 0
