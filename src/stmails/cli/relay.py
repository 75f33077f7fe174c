"""`stmails relay`: the SMTP submission relay that enforces the suppression list."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

if TYPE_CHECKING:
    from stmails.config import Settings


@app.command()
def relay(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (587 is submission).")] = 2525,
    tls_cert: Annotated[str, typer.Option(help="PEM certificate for STARTTLS.")] = "",
    tls_key: Annotated[str, typer.Option(help="PEM private key for STARTTLS.")] = "",
    allow_plain_auth: Annotated[
        bool, typer.Option(help="Accept AUTH without TLS (loopback testing only).")
    ] = False,
) -> None:
    """Accept mail from applications (AUTH as an API user whose role grants relay:send:
    username and token) and forward it to the configured upstream SMTP servers; suppressed
    recipients get 550 5.7.1."""
    from stmails.cli.process import server_process
    from stmails.config import load_settings

    if bool(tls_cert) != bool(tls_key):
        raise typer.BadParameter("give both --tls-cert and --tls-key", param_hint="--tls-cert")
    if not tls_cert and not allow_plain_auth:
        raise typer.BadParameter(
            "AUTH needs TLS: give --tls-cert/--tls-key, or --allow-plain-auth on loopback",
            param_hint="--tls-cert",
        )
    settings = load_settings()
    with server_process(settings, "relay"):
        _relay(settings, host, port, tls_cert, tls_key, allow_plain_auth)


def _relay(
    settings: Settings, host: str, port: int, tls_cert: str, tls_key: str, allow_plain_auth: bool
) -> None:
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.services import bounces
    from stmails.services.errors import InvalidInput
    from stmails.services.sending.routing import RoutedPools
    from stmails.services.sending.runtime import load_config, return_path_for, verp_maker
    from stmails.workers.relay import RelayHandler, make_controller, relay_login, tls_context

    engine = open_database(settings)
    sessions = session_factory(engine)
    with sessions() as session:
        try:
            config = load_config(session, settings.root_url)
        except InvalidInput as exc:
            typer.echo(f"stmails relay: the sending settings cannot work: {exc}", err=True)
            raise typer.Exit(1) from None
    if not config.smtp:
        typer.echo("stmails relay: no SMTP server is enabled (settings: smtp)", err=True)
        raise typer.Exit(1)
    # Each relayed message goes through the servers its From header is routed to.
    pools = RoutedPools()
    secret = settings.resolved_secret_key().encode()
    return_path = return_path_for(config, verp_maker(secret))
    handler = RelayHandler(
        sessions, pools.transport(config.smtp), config, return_path, bounces.record, secret
    )

    controller = make_controller(
        handler,
        relay_login(sessions),
        host=host,
        port=port,
        tls=tls_context(tls_cert, tls_key) if tls_cert else None,
        allow_plain_auth=allow_plain_auth,
    )
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    controller.start()
    typer.echo(f"stmails relay: listening on {host}:{port}")
    try:
        done.wait()
    finally:
        controller.stop()
        pools.close()
        engine.dispose()
