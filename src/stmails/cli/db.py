"""`stmails db migrate`: bring the database to the newest schema."""

from __future__ import annotations

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
