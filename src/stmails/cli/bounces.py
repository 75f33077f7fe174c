"""`stmails bounces ...`: bounce maintenance (`reapply`; the channels add `scan`)."""

from __future__ import annotations

import typer

from stmails.cli.main import app

bounces_app = typer.Typer(help="Bounce maintenance.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")


@bounces_app.command("reapply")
def reapply() -> None:
    """Re-evaluate every recorded bounce under the rules now in force (in one transaction)."""
    # Imported here so that `stmails --help` stays fast.
    from rich.progress import Progress

    from stmails.config import load_settings
    from stmails.db.engine import session_factory, transaction
    from stmails.db.migrate import open_database
    from stmails.services import bounces

    engine = open_database(load_settings())
    try:
        with Progress(transient=True) as progress, transaction(session_factory(engine)) as session:
            task = progress.add_task("replaying bounces", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = bounces.reapply(session, progress=advance)
    finally:
        engine.dispose()
    actions = ", ".join(f"{name} {n}" for name, n in sorted(result.actions.items())) or "none"
    typer.echo(
        f"{result.bounces} bounces of {result.subjects} addresses replayed; "
        f"{result.retyped} retyped; actions: {actions}; {result.suppressed} suppressed"
    )
