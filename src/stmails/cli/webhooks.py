"""`stmails webhooks replay PROVIDER FILE`: run a captured webhook payload through its adapter.

For debugging: prints the events the adapter makes of the payload, one JSON object a line.
With `--header` the request is verified too, against the secrets in the settings; with
`--record` the events are recorded in the database as the route would record them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from stmails.cli.main import app

webhooks_app = typer.Typer(help="ESP webhook tools.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


def _event_json(event: Any) -> str:
    data = asdict(event)
    data["occurred_at"] = event.occurred_at.isoformat() if event.occurred_at else None
    data["dedup_key"] = event.dedup_key()
    return json.dumps(data, sort_keys=True, default=str)


@webhooks_app.command("replay")
def replay(
    provider: Annotated[str, typer.Argument(help="ses, sendgrid, postmark, mailgun, ...")],
    file: Annotated[Path, typer.Argument(help="The captured request body ('-' for stdin).")],
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", help="A request header 'Name: value'; verifies the request."
        ),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="Record the events in the database.")
    ] = False,
) -> None:
    """Parse (and with --header verify) a captured payload; print its events as JSON lines."""
    from stmails.ingest.webhooks import WebhookError, WebhookRequest, default_registry
    from stmails.ingest.webhooks.ses import notification_events

    adapters = default_registry()
    adapter = adapters.get(provider)
    if adapter is None:
        raise typer.BadParameter(f"one of {', '.join(sorted(adapters))}", param_hint="PROVIDER")
    body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    headers = {}
    for item in header or []:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        if headers:
            config = _provider_settings(provider)
            result = adapter.handle(WebhookRequest(body=body, headers=headers), config)
            events = result.events
        else:
            document = json.loads(body) if body.lstrip().startswith(b"{") else None
            # A bare SES notification (not wrapped by SNS) is read directly.
            if provider == "ses" and isinstance(document, dict) and "Type" not in document:
                events = notification_events(document)
            else:
                events = adapter.parse(body)
    except (WebhookError, ValueError) as exc:
        typer.echo(f"{provider}: {exc}", err=True)
        raise typer.Exit(1) from None
    for event in events:
        typer.echo(_event_json(event))
    typer.echo(f"{len(events)} event(s)", err=True)
    if record and events:
        _record(events)


def _provider_settings(provider: str) -> dict[str, Any]:
    from stmails.config import load_settings
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.ingest.webhooks.settings import provider_config
    from stmails.services import settings as settings_service

    engine = open_database(load_settings())
    try:
        with session_factory(engine)() as session:
            values = settings_service.get_all(session)
    finally:
        engine.dispose()
    config = provider_config(values.get, provider)
    if config is None:
        typer.echo(f"{provider} is not enabled in the settings", err=True)
        raise typer.Exit(1)
    return config


def _record(events: list[Any]) -> None:
    from stmails.config import load_settings
    from stmails.db.engine import session_factory, transaction
    from stmails.db.migrate import open_database
    from stmails.services import bounces

    engine = open_database(load_settings())
    try:
        with transaction(session_factory(engine)) as session:
            results = [bounces.record(session, event) for event in events]
    finally:
        engine.dispose()
    duplicates = sum(1 for r in results if r.duplicate)
    typer.echo(f"recorded {len(results) - duplicates}, duplicates {duplicates}", err=True)
