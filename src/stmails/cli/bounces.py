"""`stmails bounces ...`: bounce maintenance (`reapply`) and mailbox scanning (`scan`)."""

from __future__ import annotations

from typing import Annotated, Any

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


@bounces_app.command("scan")
def scan(
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", help="Scan only the mailbox with this name.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and classify; record, delete and move nothing.")
    ] = False,
) -> None:
    """Scan the bounce mailboxes of `bounce.mailboxes` once (for cron), with a summary."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from stmails.config import load_settings
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.ingest.mailbox import MailboxError, RecordUnavailable
    from stmails.workers.mailbox import configured_mailboxes, scan_mailbox

    settings = load_settings()
    engine = open_database(settings)
    console = Console(stderr=True)
    table = Table("mailbox", "read", "bounces", "complaints", "ignored", "quarantined", "failed")
    failures = 0
    try:
        sessions = session_factory(engine)
        invalid: list[str] = []
        configs = configured_mailboxes(sessions, invalid)
        for message in invalid:
            failures += 1
            console.print(f"[red]{message}[/red]")
        if mailbox is not None:
            configs = [c for c in configs if c.name == mailbox]
            if not configs:
                raise typer.BadParameter(
                    f"no enabled mailbox named {mailbox!r}", param_hint="--mailbox"
                )
        if not configs:
            console.print("no bounce mailbox is configured (bounce.mailboxes)")
            return
        for config in configs:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"scanning {config.name}", total=None)

                def advance(
                    done: int, total: int, task_id: Any = task, bar: Any = progress
                ) -> None:
                    bar.update(task_id, completed=done, total=total)

                try:
                    summary = scan_mailbox(
                        config, sessions, settings, dry_run=dry_run, progress=advance
                    )
                except (MailboxError, RecordUnavailable, OSError) as exc:
                    failures += 1
                    console.print(f"[red]{config.name}: scan stopped: {exc}[/red]")
                    continue
            if summary is None:
                console.print(f"{config.name}: another process is scanning it; skipped")
                continue
            table.add_row(
                config.name,
                *(str(n) for n in (summary.read, summary.bounces, summary.complaints)),
                *(str(n) for n in (summary.ignored, summary.quarantined, summary.failed)),
            )
            for key in summary.skipped:
                console.print(f"{config.name}: message {key} skipped after repeated failures")
    finally:
        engine.dispose()
    Console().print(table)
    if dry_run:
        console.print("dry run: nothing was recorded, deleted or moved")
    if failures:
        raise typer.Exit(1)
