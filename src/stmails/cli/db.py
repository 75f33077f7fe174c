"""`stmails db`: migrate the database; back up and restore a SQLite database online."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stmails.cli.main import app

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def migrate() -> None:
    """Apply every pending migration to STMAILS_DATABASE_URL (safe to run again)."""
    # Imported here so that `stmails --help` stays fast.
    from stmails.config import load_settings
    from stmails.db.migrate import current_revision, open_database

    engine = open_database(load_settings())
    try:
        typer.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (mode 0600).")],
    force: Annotated[bool, typer.Option(help="Replace PATH when it exists.")] = False,
) -> None:
    """Copy the SQLite database to PATH while the server keeps running (a consistent
    snapshot, integrity-checked). For PostgreSQL use pg_dump (docs/deployment.md)."""
    from stmails.config import load_settings
    from stmails.db import backup as backups

    settings = load_settings()
    try:
        info = backups.backup(
            settings.database_url,
            path,
            overwrite=force,
            busy_timeout=settings.db_busy_timeout_ms / 1000,
        )
    except backups.BackupError as exc:
        typer.echo(f"stmails db backup: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"backup written to {info.path} ({info.size} bytes, schema revision {info.revision})"
    )


@db_app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `stmails db backup`.")],
    force: Annotated[
        bool,
        typer.Option(
            help="Restore even while a stmails process uses the database (it sees the restored "
            "data at once, and what it writes meanwhile is lost)."
        ),
    ] = False,
) -> None:
    """Replace the SQLite database's content with the backup at PATH, once it passed its
    checks (integrity, a known schema revision). Stop `stmails serve`, `stmails worker` and
    `stmails relay` first."""
    from stmails.config import load_settings
    from stmails.db import backup as backups

    settings = load_settings()
    try:
        info = backups.restore(
            path,
            settings.database_url,
            force=force,
            busy_timeout=settings.db_busy_timeout_ms / 1000,
        )
    except backups.BackupError as exc:
        typer.echo(f"stmails db restore: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored {path} into {info.path} (schema revision {info.revision})")
    if not info.at_head:
        typer.echo(
            f"the schema is older than this version's ({info.head}); `stmails db migrate` or "
            "the next `stmails serve` brings it up to date"
        )
