"""`stmails serve`: migrate the database, make sure the admin (and API) user exist, run uvicorn.

The preparation runs once in this process, before any worker starts, so that several workers
never race to migrate. An admin created here with a generated password has that password
printed once; it is never shown again.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

if TYPE_CHECKING:
    from stmails.config import Settings

APP_FACTORY = "stmails.server:app_from_environment"


def prepare(settings: Settings) -> str | None:
    """Migrates the database and ensures the configured users; returns a generated password.

    The admin user gets `STMAILS_ADMIN_PASSWORD` when set; when it is unset and the admin does
    not exist yet, a random password is generated and returned (None otherwise). With
    `STMAILS_ADMIN_USER` set empty no admin is made here: the first-run page of the admin UI
    creates the first one.
    `STMAILS_API_USER` + `STMAILS_API_TOKEN` make sure that API user exists with that token
    (and `STMAILS_API_USER_ROLE` with that role).
    """
    # Imported here, not at module level: every `stmails` command imports this module, and the
    # database stack would add a second of start-up to `stmails verify` and `stmails parse`.
    from stmails.db.engine import make_engine, session_factory
    from stmails.db.migrate import upgrade
    from stmails.services import users

    engine = make_engine(settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms)
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            password = (
                settings.admin_password.get_secret_value() if settings.admin_password else None
            )
            # An empty admin user name leaves the first admin to the first-run page.
            ensured = (
                users.ensure_admin(session, settings.admin_user, password)
                if settings.admin_user.strip()
                else None
            )
            if settings.api_user and settings.api_token:
                users.ensure_api_user(
                    session,
                    settings.api_user,
                    settings.api_token.get_secret_value(),
                    role_name=settings.api_user_role,
                )
            session.commit()
            return ensured.generated_password if ensured else None
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 9000).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes; more than one needs PostgreSQL.")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    sender: Annotated[
        bool,
        typer.Option(
            help="Also run the campaign sender and hygiene scheduler (else `stmails worker`)."
        ),
    ] = True,
) -> None:
    """Run the HTTP server (API, webhooks) on the configured database."""
    from stmails.cli.process import server_process
    from stmails.config import load_settings

    settings = load_settings()
    with server_process(settings, "serve"):
        _serve(settings, host, port, workers, access_log, sender)


def _serve(
    settings: Settings,
    host: str | None,
    port: int | None,
    workers: int | None,
    access_log: bool,
    sender: bool,
) -> None:
    if settings.metrics_dir is not None:
        # First thing: before anything imports the metrics (see stmails.metrics_dir).
        from stmails.metrics_dir import use_directory

        use_directory(settings.metrics_dir, wipe=True)
    from stmails.cli.worker import start_sender

    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if workers < 1:
        raise typer.BadParameter("must be 1 or more", param_hint="--workers")
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "stmails serve: --workers > 1 needs PostgreSQL (STMAILS_DATABASE_URL); SQLite has "
            "one writer, and each worker batches its own writes. Running 1 worker.",
            err=True,
        )
        workers = 1
    generated = prepare(settings)
    if generated:
        typer.echo(
            f"stmails: created admin user {settings.admin_user!r} with password: {generated}\n"
            "stmails: this password is shown only now; set STMAILS_ADMIN_PASSWORD to choose one."
        )
    if not settings.admin_user.strip():
        typer.echo(
            f"stmails: no admin user is made at start; open http://{host}:{port}/admin/first-run"
            " to create the first one (while none exists)."
        )
    typer.echo(f"stmails: listening on http://{host}:{port} ({workers} worker(s))")
    typer.echo(f"stmails: admin UI at http://{host}:{port}/admin/")
    sys.stdout.flush()
    # Workers read their settings from the environment: hand the resolved values on.
    os.environ["STMAILS_HOST"] = host
    os.environ["STMAILS_PORT"] = str(port)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    # it found. Python's default would end the process there, skipping the `finally` below and
    # with it the sender's clean stop; this handler ends it through the `finally` instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    running = start_sender(settings) if sender else None
    try:
        _run_uvicorn(settings, host, port, workers, access_log)
    finally:
        if running is not None:
            running.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int, access_log: bool) -> None:
    import uvicorn

    from stmails import logs

    # X-Forwarded-For/-Proto are believed from the trusted proxies only: they give the client
    # address the login throttle counts and the scheme that makes cookies Secure.
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        # Each worker process applies the same logging configuration as this one.
        log_config=logs.dictconfig(settings.log_format, settings.log_level),
        log_level=settings.log_level,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=10,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
