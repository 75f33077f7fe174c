"""`stmails parse`: classify bounces from .eml files, maildir folders, mbox files or stdin.

Messages are classified in worker processes, each within `--timeout` seconds
(`stmails.ingest.isolated`): a message that takes longer is reported on stderr and skipped,
and the command goes on with the others (and exits with status 1).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stmails.cli.main import app
from stmails.core import classify
from stmails.ingest.isolated import DEFAULT_BUDGET, IsolatedClassifier

# An mbox message starts with a "From " line at the start of the file or after a blank line.
_MBOX_SEPARATOR = re.compile(rb"(?:\A|\n)From [^\n]*\n")
MAX_INPUT_BYTES = 64 * 1024 * 1024


class OutputFormat(StrEnum):
    """How `stmails parse` prints its results."""

    jsonl = "jsonl"
    json = "json"
    table = "table"


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox file (separated by "From " lines); one item for plain mail."""
    if not data.startswith(b"From "):
        return [data]
    starts = [m.start() for m in _MBOX_SEPARATOR.finditer(data)]
    # Only a "From " line after a blank line separates messages ("mboxrd"/"mboxo" rules).
    starts = [s for s in starts if s == 0 or data[s - 1 : s] == b"\n"]
    messages = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(data)
        chunk = data[start:end].lstrip(b"\n")
        if chunk.strip():
            messages.append(chunk)
    return messages or [data]


def _maildir_files(folder: Path) -> list[Path]:
    subfolders = [folder / "cur", folder / "new"]
    if any(sub.is_dir() for sub in subfolders):
        return sorted(p for sub in subfolders if sub.is_dir() for p in sub.iterdir() if p.is_file())
    return sorted(p for p in folder.iterdir() if p.is_file())


def iter_inputs(paths: list[str], stdin_lines: Iterator[str]) -> Iterator[Path]:
    """Expand the command-line paths: "-" reads one path per line from stdin."""
    for item in paths:
        if item == "-":
            for line in stdin_lines:
                name = line.strip()
                if name:
                    yield Path(name)
        else:
            yield Path(item)


def expand(path: Path) -> list[Path]:
    """The message files at `path`: the file itself, or a maildir's (or folder's) files;
    raises OSError when a folder cannot be listed."""
    return _maildir_files(path) if path.is_dir() else [path]


def read_messages(path: Path) -> list[tuple[str, bytes]]:
    """(file base name, raw message) for every message in one file (an mbox holds several);
    raises OSError when the file cannot be read."""
    with path.open("rb") as handle:
        data = handle.read(MAX_INPUT_BYTES)
    # An .eml file is one message even when it starts with an mbox "From " line (its body
    # may quote another message's "From " line); other files starting with one are mboxes.
    suffix = path.suffix.lower()
    looks_mbox = suffix in (".mbox", ".mbx") or (suffix != ".eml" and data.startswith(b"From "))
    return [(path.name, message) for message in (split_mbox(data) if looks_mbox else [data])]


def _print_table(rows: list[dict[str, object]]) -> None:
    table = Table(title="stmails parse")
    columns = ("file", "recipient", "reason", "type", "hard", "status", "replycode", "detector")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row.get(column, "")) for column in columns))
    Console().print(table)


def _report_unreadable(path: Path, error: OSError) -> None:
    print(f"stmails parse: cannot read {path}: {error.strerror or error}", file=sys.stderr)


@dataclass
class _Run:
    """One `stmails parse` run: how it prints, what it collected, where it classifies."""

    output: OutputFormat
    show_all: bool
    classifier: IsolatedClassifier
    budget: float
    rows: list[dict[str, object]] = field(default_factory=list)

    def emit(self, messages: list[tuple[str, bytes]]) -> int:
        """Classify messages; print jsonl rows now, or collect them in `rows` for json/table.
        Returns how many messages could not be classified (reported on stderr)."""
        failed = 0
        outcomes = self.classifier.classify_many([raw for _, raw in messages], self.budget)
        for (name, _), outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failed += 1
                print(f"stmails parse: {name}: not classified: {outcome}", file=sys.stderr)
                continue
            found: list[dict[str, object]] = [{"file": name, **r.to_dict()} for r in outcome]
            if not found and self.show_all:
                found = [{"file": name, "kind": "none"}]
            if self.output is OutputFormat.jsonl:
                for row in found:
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                self.rows.extend(found)
        return failed

    def parse_all(self, paths: list[str]) -> int:
        """Classify every message `paths` name; returns how many inputs could not be read or
        classified (each reported on stderr)."""
        failures = 0
        for path in iter_inputs(paths, iter(sys.stdin)):
            try:
                files = expand(path)
            except OSError as error:
                failures += 1
                _report_unreadable(path, error)
                continue
            for file in files:
                try:
                    messages = read_messages(file)
                except OSError as error:
                    failures += 1
                    _report_unreadable(file, error)
                    continue
                failures += self.emit(messages)
        return failures


@app.command("parse")
def parse_command(
    paths: Annotated[list[str], typer.Argument(help=".eml file, maildir folder, mbox file or -")],
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.jsonl,
    show_all: Annotated[
        bool, typer.Option("--all", help='Print {"file": ..., "kind": "none"} for non-bounces.')
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, max=3600, help="Seconds one message may take to classify."
        ),
    ] = DEFAULT_BUDGET,
) -> None:
    """Classify bounce, complaint and auto-reply messages and print one record per recipient."""
    with IsolatedClassifier(classifier=classify) as classifier:
        run = _Run(output, show_all, classifier, timeout)
        failures = run.parse_all(paths)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(run.rows, ensure_ascii=False, indent=1) + "\n")
    elif output is OutputFormat.table:
        _print_table(run.rows)
    if failures:
        raise typer.Exit(code=1)
