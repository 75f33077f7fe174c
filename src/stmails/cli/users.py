"""`stmails users ...`: manage admin and API users."""

from __future__ import annotations

import typer

from stmails.cli.main import app

users_app = typer.Typer(help="Admin and API users.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("create-api")
def create_api(name: str = typer.Argument(..., help="User name of the new API user.")) -> None:
    """Create an API user and print its token (shown only this once)."""
    # Imported here so that `stmails --help` stays fast.
    from stmails.config import load_settings
    from stmails.db.engine import session_factory, transaction
    from stmails.db.migrate import open_database
    from stmails.services import users
    from stmails.services.errors import Conflict, InvalidInput

    engine = open_database(load_settings())
    try:
        with transaction(session_factory(engine)) as session:
            _, token = users.create_api_user(session, name)
    except (Conflict, InvalidInput) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(token)
