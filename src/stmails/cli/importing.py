"""`stmails import listmonk --from URL`: bring a listmonk installation's data into stmails.

The listmonk database is read in one read-only snapshot (listmonk may keep running); the
import can be run again: it adds only what is new (docs/migrating-from-listmonk.md).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from stmails.cli.main import app

import_app = typer.Typer(help="Import data from another system.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("listmonk")
def listmonk(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The listmonk database, e.g. postgresql://listmonk:secret@db:5432/listmonk "
            "(add ?options=-csearch_path%3Dschema for a schema other than public).",
        ),
    ],
    settings: Annotated[
        bool, typer.Option(help="Also import SMTP, bounce, privacy and app settings.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import subscribers, lists, subscriptions, templates, campaigns, bounces, media records,
    tracked links, roles, users and settings from a listmonk v4 to v6 database."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from stmails.config import load_settings
    from stmails.db.migrate import open_database
    from stmails.services.listmonk_import import ListmonkImportError, import_listmonk

    engine = open_database(load_settings())
    try:
        with Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            transient=as_json,
            disable=as_json,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=max(total, done))
                bar.update(tasks[step], completed=done, total=max(total, done))

            report = import_listmonk(source, engine, settings=settings, progress=progress)
    except ListmonkImportError as exc:
        typer.echo(f"stmails import listmonk: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    typer.echo(f"listmonk schema {report.version}")
    for name, step in report.steps.items():
        typer.echo(f"{name:<14} {step.seen:>9} read {step.added:>9} added {step.matched:>9} kept")
        for note in step.notes:
            typer.echo(f"  - {note}")
