"""`stmails worker`: the campaign sender on its own (`stmails serve` runs the same loop)."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

# The sender's stack (SQLAlchemy, the MIME builder) is imported when a command runs, not when
# `stmails` starts: every command imports this module.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stmails.config import Settings
    from stmails.workers.sender import SenderLoop


@dataclass
class RunningSender:
    """A sender loop running in a background thread, and how to stop it."""

    loop: SenderLoop
    thread: threading.Thread
    engine: Engine

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the loop to stop (in-flight messages finish, unsent claims are released)."""
        self.loop.stop.set()
        self.thread.join(timeout)
        self.engine.dispose()


def build_loop(settings: Settings, poll_seconds: float = 5.0) -> tuple[SenderLoop, Engine]:
    """The sender loop for `settings`, on a migrated database."""
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.workers.sender import SenderLoop, verp_maker

    engine = open_database(settings)
    loop = SenderLoop(
        session_factory(engine),
        root_url=settings.root_url,
        verp=verp_maker(settings.resolved_secret_key().encode()),
        poll_seconds=poll_seconds,
    )
    return loop, engine


def start_sender(settings: Settings) -> RunningSender:
    """Starts the sender in a daemon thread (used by `stmails serve`)."""
    from stmails.workers.sender import start_in_thread

    loop, engine = build_loop(settings)
    return RunningSender(loop, start_in_thread(loop), engine)


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between looks for campaigns.")] = 5.0,
) -> None:
    """Run the campaign sender until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from stmails.config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    loop, engine = build_loop(load_settings(), poll_seconds=poll)

    def stop(signum: int, frame: FrameType | None) -> None:
        loop.stop.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    typer.echo("stmails worker: sending campaigns (Ctrl-C to stop)")
    try:
        loop.run_forever()
    finally:
        engine.dispose()
