"""`stmails parse` classifies each message within --timeout seconds, in worker processes: a
message that hangs the classifier is reported and skipped, the others are printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.mailbox.hostile import hanging_classify, hostile_bounce
from ingest.mailbox.messages import dsn
from stmails.cli import commands  # noqa: F401
from stmails.cli import parse as parse_module
from stmails.cli.main import app


def test_a_message_over_the_budget_is_reported_and_the_others_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_module, "classify", hanging_classify)
    (tmp_path / "1-hostile.eml").write_bytes(hostile_bounce())
    (tmp_path / "2-fine.eml").write_bytes(dsn("fine@dest.example"))
    result = CliRunner().invoke(
        app,
        ["parse", "--timeout", "1", str(tmp_path / "1-hostile.eml"), str(tmp_path / "2-fine.eml")],
    )
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["file"], r["recipient"]) for r in records] == [("2-fine.eml", "fine@dest.example")]
    assert "1-hostile.eml: not classified: classification took longer than 1 s" in result.stderr


def test_the_budget_must_be_positive() -> None:
    result = CliRunner().invoke(app, ["parse", "--timeout", "0", "x.eml"])
    assert result.exit_code == 2
