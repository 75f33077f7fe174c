"""`stmails suppressions import|export`: the suppression list as CSV, with a progress bar.

CSV columns (services/suppression_csv.py; a header row naming `email`, `recipient`, `domain` or
`email_hash` is required, unknown columns are ignored): `email` (or `recipient`), `email_hash`,
`domain`, `scope`, `list_id`, `reason`, `source`, `description`, `expires_at`; a file written by
`export` imports as it is.
Import upserts in batches of 10,000 rows, one transaction each. A row that cannot be read is
reported with its line number and skipped; the command then exits with status 1, so nothing
is dropped silently.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from stmails.cli.main import app

suppressions_app = typer.Typer(help="The suppression list as CSV.", no_args_is_help=True)
app.add_typer(suppressions_app, name="suppressions")

BATCH = 10_000
# Bad rows shown on the terminal; the rest are only counted.
SHOWN_ERRORS = 20


class _Counting:
    """Lines of a text stream, counting the characters read (for the progress bar)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.stream:
            self.read += len(line)
            yield line


@suppressions_app.command("import")
def import_csv(
    path: Annotated[Path, typer.Argument(help="CSV file ('-' for standard input).")],
    reason: Annotated[str, typer.Option(help="Reason for rows without one.")] = "import",
    source: Annotated[str, typer.Option(help="Source for rows without one.")] = "csv",
) -> None:
    """Insert or update suppression entries from a CSV file."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from stmails.config import load_settings
    from stmails.db.engine import session_factory, transaction
    from stmails.db.migrate import open_database
    from stmails.services import suppression, suppression_csv

    engine = open_database(load_settings())
    sessions = session_factory(engine)
    size = path.stat().st_size if str(path) != "-" else 0
    stream: TextIO = sys.stdin if str(path) == "-" else path.open(newline="", encoding="utf-8-sig")
    imported = bad = 0
    batch: list[suppression.SuppressionInput] = []

    def flush() -> None:
        nonlocal imported
        if batch:
            with transaction(sessions) as session:
                imported += suppression.upsert_many(session, batch)
            batch.clear()

    try:
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TimeElapsedColumn(),
            transient=False,
        ) as progress:
            task = progress.add_task("import", total=size or None, rows=0)
            lines = _Counting(stream)
            for line, row in suppression_csv.read_rows(lines):
                try:
                    batch.append(
                        suppression.parse_entry(
                            suppression_csv.import_row(row, reason, source),
                            default_reason=reason,
                        )
                    )
                except suppression.SuppressionInputError as exc:
                    bad += 1
                    if bad <= SHOWN_ERRORS:
                        progress.console.print(f"line {line}: {exc}", style="red")
                if len(batch) >= BATCH:
                    flush()
                    progress.update(task, completed=lines.read, rows=imported)
            flush()
            progress.update(task, completed=size, rows=imported)
    except (suppression_csv.CsvHeaderError, csv.Error) as exc:
        # A file that cannot be read as a whole: say so, and what was imported before it.
        typer.echo(f"error: {exc}; imported {imported} entries before it", err=True)
        raise typer.Exit(1) from None
    finally:
        if stream is not sys.stdin:
            stream.close()
        engine.dispose()
    typer.echo(f"imported {imported} entries; {bad} bad rows skipped")
    if bad:
        raise typer.Exit(1)


@suppressions_app.command("export")
def export_csv(
    path: Annotated[Path, typer.Argument(help="CSV file to write ('-' for standard output).")],
    reason: Annotated[str, typer.Option(help="Only this reason.")] = "",
    scope: Annotated[str, typer.Option(help="Only this scope (global or list).")] = "",
) -> None:
    """Write the suppression list (or part of it) as CSV; cells that a spreadsheet would run
    as formulas are neutralized."""
    from rich.progress import Progress

    from stmails.config import load_settings
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.services import suppression, suppression_csv

    engine = open_database(load_settings())
    filters = suppression.SearchFilters(reason=reason, scope=scope)
    out: TextIO = sys.stdout if str(path) == "-" else path.open("w", newline="", encoding="utf-8")
    written = 0
    try:
        with (
            session_factory(engine, readonly=True)() as session,
            Progress(disable=out is sys.stdout) as progress,
        ):
            total = suppression.search(session, filters, limit=0)[1]
            task = progress.add_task("exporting", total=total)

            def counted() -> None:
                nonlocal written
                written += 1
                if written % 5000 == 0:
                    progress.update(task, completed=written)

            for line in suppression_csv.export_lines(session, filters, counted):
                out.write(line)
            progress.update(task, completed=written)
    finally:
        if out is not sys.stdout:
            out.close()
        engine.dispose()
    if out is not sys.stdout:
        typer.echo(f"exported {written} entries to {path}")
