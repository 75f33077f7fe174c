"""What every long-running command (`serve`, `worker`, `relay`) does before its work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from stmails.config import Settings


@contextlib.contextmanager
def server_process(settings: Settings, command: str) -> Iterator[None]:
    """Configures logging as `settings` say (format and level) and holds the database's server
    lock (SQLite; see `stmails.db.backup`) until the block ends. Exits with a message when a
    restore of the database is running."""
    from stmails import logs
    from stmails.db.backup import BackupError, held_by_server

    logs.configure(settings.log_format, settings.log_level)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(held_by_server(settings.database_url))
        except BackupError as exc:
            typer.echo(f"stmails {command}: {exc}", err=True)
            raise typer.Exit(1) from None
        yield
