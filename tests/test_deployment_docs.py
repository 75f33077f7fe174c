"""docs/deployment.md: every `stmails` command line it shows exists, with the options it uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401
from stmails.cli.main import app

PAGE = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"
# A command line: an inline code span that starts with `stmails `, a line of a code block that
# does, or `bin/stmails ` in a code block (the systemd units' ExecStart).
INVOCATION = re.compile(
    r"(?:`|bin/|^)stmails ((?:[a-z][a-z-]* ?)+)((?:--[a-z-]+[^`\n]*)?)", re.MULTILINE
)
OPTION = re.compile(r"--[a-z][a-z-]*")


def invocations() -> list[tuple[list[str], list[str]]]:
    """Each distinct command line of the page: its words and its options."""
    found: dict[tuple[str, ...], list[str]] = {}
    for words, rest in INVOCATION.findall(PAGE.read_text(encoding="utf-8")):
        options = found.setdefault(tuple(words.split()), [])
        options.extend(o for o in OPTION.findall(rest) if o not in options)
    return [(list(words), options) for words, options in found.items()]


def test_the_page_shows_command_lines() -> None:
    shown = {" ".join(words) for words, _ in invocations()}
    assert {"serve", "worker", "db backup", "db restore", "db migrate"} <= shown


@pytest.mark.parametrize(
    ("words", "options"), invocations(), ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_each_command_line_names_a_real_command_and_options(
    words: list[str], options: list[str]
) -> None:
    runner = CliRunner()
    # Trailing words may be arguments (a file name): the longest command prefix must exist.
    for end in range(len(words), 0, -1):
        result = runner.invoke(app, [*words[:end], "--help"])
        if result.exit_code == 0:
            break
    else:
        pytest.fail(f"`stmails {' '.join(words)}` is not a command")
    for option in options:
        assert option in result.output, f"`stmails {' '.join(words[:end])}` has no {option}"
