"""`stmails parse` end to end through the real Typer application."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app

DATA = Path(__file__).resolve().parent.parent / "data" / "core"
runner = CliRunner()


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_jsonl_one_object_per_record_with_file() -> None:
    result = runner.invoke(app, ["parse", str(DATA / "dsn-userunknown.eml")])
    assert result.exit_code == 0
    rows = _lines(result.stdout)
    assert [row["recipient"] for row in rows] == ["alice@dest.example", "bob@dest.example"]
    assert all(row["file"] == "dsn-userunknown.eml" for row in rows)
    assert rows[0]["from"] == "news@sender.example"


def test_all_prints_none_for_non_bounces_and_unreadable_file_sets_exit(tmp_path: Path) -> None:
    missing = tmp_path / "missing.eml"
    result = runner.invoke(
        app,
        [
            "parse",
            "--all",
            str(DATA / "not-a-bounce.eml"),
            str(missing),
            str(DATA / "arf-abuse.eml"),
        ],
    )
    assert result.exit_code == 1
    rows = _lines(result.stdout)
    assert rows[0] == {"file": "not-a-bounce.eml", "kind": "none"}
    assert rows[1]["reason"] == "feedback"
    assert "missing.eml" in result.stderr


def test_maildir_mbox_and_stdin(tmp_path: Path) -> None:
    maildir = tmp_path / "box"
    (maildir / "cur").mkdir(parents=True)
    (maildir / "new").mkdir()
    (maildir / "new" / "1").write_bytes((DATA / "arf-abuse.eml").read_bytes())
    mbox = tmp_path / "all.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON Mon Mar  2 10:00:00 2026\n"
        + (DATA / "exim-blocked.eml").read_bytes()
        + b"\nFrom dave Mon Mar  2 10:00:00 2026\n"
        + (DATA / "autoreply-rfc3834.eml").read_bytes()
    )
    result = runner.invoke(app, ["parse", "-", "--format", "json"], input=f"{maildir}\n{mbox}\n")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["reason"] for row in rows] == ["feedback", "blocked", "vacation"]
    assert [row["file"] for row in rows] == ["1", "all.mbox", "all.mbox"]


def test_table_format() -> None:
    result = runner.invoke(app, ["parse", "--format", "table", str(DATA / "exim-blocked.eml")])
    assert result.exit_code == 0
    assert "blocked" in result.stdout


def test_eml_starting_with_from_line_is_one_message(tmp_path: Path) -> None:
    eml = tmp_path / "one.eml"
    eml.write_bytes(
        b"From MAILER-DAEMON Mon Mar  2 10:00:00 2026\n"
        + (DATA / "exim-blocked.eml").read_bytes()
        + b"\nFrom news@sender.example Mon Mar  2 09:00:00 2026\nquoted line\n"
    )
    result = runner.invoke(app, ["parse", "--all", str(eml)])
    assert result.exit_code == 0
    assert len(_lines(result.stdout)) == 1
