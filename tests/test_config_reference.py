"""docs/configuration.md is what `stmails config reference` generates from the settings models,
and the docs name no environment variable that the settings do not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.config import RUNTIME_DESCRIPTIONS, render_reference
from stmails.cli.main import app
from stmails.config import Settings
from stmails.services import settings as runtime

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
REFERENCE = DOCS / "configuration.md"
# Variables that are not settings fields: the TOML file's name, the test suite's database,
# and the pattern the docs use for "any setting".
NOT_FIELDS = {"STMAILS_CONFIG", "STMAILS_TEST_DATABASE_URL", "STMAILS_<NAME>"}


def test_the_committed_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(DOCS), (
        "docs/configuration.md is out of date: run `make docs`"
    )


def test_every_setting_and_runtime_key_has_a_row() -> None:
    text = render_reference(DOCS)
    for name in Settings.model_fields:
        assert f"| `{name}` | `STMAILS_{name.upper()}` |" in text
        assert Settings.model_fields[name].description, f"{name} has no description"
    for key in runtime.DEFAULTS:
        assert f"| `{key}` |" in text
    # Descriptions are only given for keys that exist.
    assert set(RUNTIME_DESCRIPTIONS) <= set(runtime.DEFAULTS)


def test_secrets_are_named_and_their_defaults_hold_nothing() -> None:
    text = render_reference(DOCS)
    row = next(line for line in text.splitlines() if line.startswith("| `bounce.postmark` |"))
    assert "Secrets (masked on read): `password`." in row
    # Each row names the pages that document its key.
    assert "See docs/bounce-channels.md" in row
    row = next(line for line in text.splitlines() if line.startswith("| `secret_key` |"))
    assert "| secret (optional) | unset |" in row


def test_check_mode_tells_a_stale_page_from_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    page = tmp_path / "configuration.md"
    page.write_text(render_reference(tmp_path).replace("9000", "9001"), encoding="utf-8")
    stale = runner.invoke(app, ["config", "reference", "--output", str(page), "--check"])
    assert stale.exit_code == 1 and "make docs" in stale.output
    written = runner.invoke(app, ["config", "reference", "--output", str(page)])
    assert written.exit_code == 0
    fresh = runner.invoke(app, ["config", "reference", "--output", str(page), "--check"])
    assert fresh.exit_code == 0
    # Without --output the page goes to standard output, pointing into ./docs.
    monkeypatch.chdir(REPO)
    printed = runner.invoke(app, ["config", "reference"])
    assert printed.output == render_reference(DOCS)


@pytest.mark.parametrize(
    "page", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_the_docs_name_only_environment_variables_that_exist(page: Path) -> None:
    named = set(re.findall(r"STMAILS_[A-Z_<>]+", page.read_text(encoding="utf-8")))
    known = {f"STMAILS_{name.upper()}" for name in Settings.model_fields} | NOT_FIELDS
    assert named <= known, f"{page.name} names unknown variables: {sorted(named - known)}"
