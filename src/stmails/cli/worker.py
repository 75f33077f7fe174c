"""`stmails worker`: the campaign sender on its own (`stmails serve` runs the same loop)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

log = logging.getLogger("stmails.cli.worker")

# The sender's stack (SQLAlchemy, the MIME builder) is imported when a command runs, not when
# `stmails` starts: every command imports this module.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stmails.config import Settings
    from stmails.workers.scheduler import SchedulerLoop
    from stmails.workers.sender import SenderLoop


@dataclass
class RunningSender:
    """A sender loop running in a background thread, and how to stop it."""

    loop: SenderLoop
    thread: threading.Thread
    engine: Engine
    unregister: Callable[[], None]
    scheduler: SchedulerLoop | None = None

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the loop to stop (in-flight messages finish, unsent claims are released)."""
        self.unregister()
        self.loop.stop.set()
        if self.scheduler is not None:
            self.scheduler.stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("campaign sender: still busy after %.0f s; leaving it", timeout)
        else:
            log.info("campaign sender stopped")
        self.engine.dispose()


def build_loop(settings: Settings, poll_seconds: float = 5.0) -> tuple[SenderLoop, Engine]:
    """The sender loop for `settings`, on a migrated database."""
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.services.sending.runtime import verp_maker
    from stmails.workers.sender import SenderLoop

    engine = open_database(settings)
    secret = settings.resolved_secret_key().encode()
    loop = SenderLoop(
        session_factory(engine),
        root_url=settings.root_url,
        verp=verp_maker(secret),
        poll_seconds=poll_seconds,
        dkim_secret=secret,
        claim_timeout=settings.send_claim_timeout,
    )
    return loop, engine


def start_sender(settings: Settings) -> RunningSender:
    """Starts the sender in a daemon thread (used by `stmails serve`); the thread's liveness
    is reported by `GET /health/ready` of an application in the same process."""
    from stmails import liveness
    from stmails.workers.sender import start_in_thread

    loop, engine = build_loop(settings)
    thread = start_in_thread(loop)
    unregister = liveness.register("campaign_sender", thread.is_alive)
    return RunningSender(loop, thread, engine, unregister, start_scheduler(loop))


def start_scheduler(sender: SenderLoop) -> SchedulerLoop:
    """Starts the hygiene scheduler (services.hygiene: full risk rescoring, sunset policy,
    re-verification) beside the sender, on its database; only one process of a deployment
    runs its jobs at a time (the lease)."""
    from stmails.workers.hygiene_jobs import ReengagementMailer, reverify_job, sunset_job
    from stmails.workers.scheduler import SchedulerLoop, default_jobs
    from stmails.workers.scheduler import start_in_thread as start_scheduler_thread

    mailer = ReengagementMailer(sender.root_url, sender.dkim_secret or b"")
    jobs = [*default_jobs(), sunset_job(mailer), reverify_job()]
    scheduler = SchedulerLoop(sender.factory, jobs=jobs)
    start_scheduler_thread(scheduler)
    return scheduler


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between looks for campaigns.")] = 5.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this process's Prometheus metrics on 127.0.0.1:PORT/metrics (for a "
            "worker on a host without `stmails serve`; bind only to loopback, no auth)."
        ),
    ] = None,
) -> None:
    """Run the campaign sender until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from stmails.cli.process import server_process
    from stmails.config import load_settings

    settings = load_settings()
    with server_process(settings, "worker"):
        _work(settings, poll, metrics_port)


def _work(settings: Settings, poll: float, metrics_port: int | None = None) -> None:
    if settings.metrics_dir is not None:
        # Before anything imports the metrics (see stmails.metrics_dir); the worker's counts
        # then appear in /metrics of the host's servers that share the directory.
        from stmails.metrics_dir import use_directory

        use_directory(settings.metrics_dir, wipe=False)
    loop, engine = build_loop(settings, poll_seconds=poll)

    scheduler = start_scheduler(loop)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop.set()
        scheduler.stop.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%s/metrics", metrics_port)
    typer.echo(
        "stmails worker: sending campaigns and running the hygiene scheduler (Ctrl-C to stop)"
    )
    try:
        loop.run_forever()
    finally:
        scheduler.stop.set()
        engine.dispose()
