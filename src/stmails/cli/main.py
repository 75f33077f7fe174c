"""The `stmails` command: one Typer application; each sub-module adds its commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="stmails",
    help="stmails: bounce classification, suppression, sending and address verification.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """stmails command line."""


def main() -> None:
    """Entry point of the `stmails` console script."""
    # Command modules register themselves on `app` when imported.
    from stmails.cli import commands  # noqa: F401

    app()
