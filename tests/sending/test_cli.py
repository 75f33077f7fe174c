"""`stmails suppressions import|export` on a fresh SQLite database."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STMAILS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("STMAILS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STMAILS_CONFIG", raising=False)
    return tmp_path


def test_import_reports_bad_rows_and_export_round_trips(cli_env: Path) -> None:
    source = cli_env / "in.csv"
    source.write_text(
        "email,domain,reason,list_id,description\n"
        "A@Example.com,,hard_bounce,,\n"
        ",spam.example,,,=cmd|calc\n"
        "b@example.com,,,3,\n"
        "not-an-address,,,,\n"
        "c@example.com,,weird,,\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["suppressions", "import", str(source)])
    assert result.exit_code == 1, result.output
    assert "imported 3 entries; 2 bad rows skipped" in result.output
    assert "line 5" in result.output and "line 6" in result.output

    target = cli_env / "out.csv"
    result = runner.invoke(app, ["suppressions", "export", str(target)])
    assert result.exit_code == 0, result.output
    rows = {
        r["recipient"] or r["domain"]: r for r in csv.DictReader(io.StringIO(target.read_text()))
    }
    assert set(rows) == {"a@example.com", "spam.example", "b@example.com"}
    assert rows["a@example.com"]["reason"] == "hard_bounce"
    assert rows["b@example.com"]["scope"] == "list" and rows["b@example.com"]["list_id"] == "3"
    assert rows["spam.example"]["reason"] == "import"
    assert rows["spam.example"]["description"] == "'=cmd|calc"

    # The exported file imports again as it is (every row, nothing refused).
    result = runner.invoke(app, ["suppressions", "import", str(target)])
    assert result.exit_code == 0, result.output
    assert "imported 3 entries; 0 bad rows skipped" in result.output


def test_a_file_without_a_usable_header_is_refused_with_a_clear_error(cli_env: Path) -> None:
    source = cli_env / "no-header.csv"
    source.write_text("a@example.com,hard_bounce\nb@example.com,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["suppressions", "import", str(source)])
    assert result.exit_code == 1
    assert "needs a header row with a recipient, email, domain or email_hash column" in (
        result.output
    )
    assert "imported 0 entries before it" in result.output
