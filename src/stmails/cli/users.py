"""`stmails users ...` and `stmails roles ...`: manage admin and API users and their roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

users_app = typer.Typer(help="Admin and API users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
roles_app = typer.Typer(help="User roles: named sets of permissions.", no_args_is_help=True)
app.add_typer(roles_app, name="roles")


@contextmanager
def _transaction() -> Iterator[Session]:
    """A session on the configured (migrated) database, committed when the block succeeds; a
    refused change (bad input, name taken, unknown role) ends the command with its message."""
    # Imported here so that `stmails --help` stays fast.
    from stmails.config import load_settings
    from stmails.db.engine import session_factory, transaction
    from stmails.db.migrate import open_database
    from stmails.services.errors import Conflict, InvalidInput, NotFound

    engine = open_database(load_settings())
    try:
        with transaction(session_factory(engine)) as session:
            yield session
    except (Conflict, InvalidInput, NotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@users_app.command("create-api")
def create_api(
    name: Annotated[str, typer.Argument(help="User name of the new API user.")],
    role: Annotated[
        str | None, typer.Option(help="Name of the user's role (default: Super Admin).")
    ] = None,
) -> None:
    """Create an API user and print its token (shown only this once)."""
    from stmails.services import roles, users
    from stmails.services.errors import NotFound

    with _transaction() as session:
        chosen = None
        if role is not None:
            chosen = roles.find(session, role)
            if chosen is None:
                raise NotFound(f"role {role!r} not found (see `stmails roles list`)")
        _, token = users.create_api_user(session, name, role=chosen)
    typer.echo(token)


@roles_app.command("list")
def list_roles() -> None:
    """Print every role: id, name and permissions."""
    from stmails.services import roles

    with _transaction() as session:
        lines = [
            f"{r.id}\t{r.name}\t{' '.join(roles.listed_permissions(r))}"
            for r in roles.list_roles(session)
        ]
    typer.echo("\n".join(lines))


@roles_app.command("create")
def create_role(
    name: Annotated[str, typer.Argument(help="Name of the new role.")],
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", "-p", help="A permission it grants (repeat the option)."),
    ] = None,
) -> None:
    """Create a role with the given permissions and print its id."""
    from stmails.services import roles

    with _transaction() as session:
        made = roles.create(session, name, permission or [])
        session.flush()
        role_id = made.id
    typer.echo(role_id)
