"""The hygiene scheduler: periodic jobs (full risk rescoring, the sunset policy,
re-verification), one runner per deployment.

Every process that runs `stmails serve` or `stmails worker` starts a `SchedulerLoop`; each pass
it tries to take the lease (`services.hygiene.lease`), and only the holder runs jobs. A job runs
when it is enabled and due (its last start, whoever ran it, is its interval ago); what it did or
the error that stopped it is recorded with the lease, for the admin to see
(`GET /api/hygiene/scheduler`), and logged. A failing job does not stop the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from stmails.db.types import utcnow
from stmails.services import settings as settings_service
from stmails.services.hygiene import lease, risk

log = logging.getLogger("stmails.scheduler")

__all__ = ["Job", "SchedulerLoop", "default_jobs", "start_in_thread"]

# How long a lease lasts without renewal: a holder that dies is replaced after this.
LEASE_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class Job:
    """A periodic job: `every(session)` is its interval, or None while it is switched off;
    `run(factory)` does the work and returns what it did (JSON-ready)."""

    name: str
    every: Callable[[Session], timedelta | None]
    run: Callable[[sessionmaker[Session]], dict[str, Any]]


def _risk_every(session: Session) -> timedelta:
    value = settings_service.get_valid(session, "hygiene.risk")
    return timedelta(hours=int(value["full_every_hours"]))


def _risk_run(factory: sessionmaker[Session]) -> dict[str, Any]:
    return risk.rescore_all(factory).to_dict()


def default_jobs() -> list[Job]:
    """The jobs that need nothing but the database (the sending jobs are added by the
    process that can send: see `cli.worker`)."""
    return [Job("risk_full", _risk_every, _risk_run)]


def holder_name() -> str:
    """This process's name in the lease: host, pid and a random suffix."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class SchedulerLoop:
    """Runs due jobs while holding the lease, until `stop` is set."""

    factory: sessionmaker[Session]
    jobs: list[Job] = field(default_factory=default_jobs)
    holder: str = field(default_factory=holder_name)
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = utcnow

    def run_once(self) -> list[str]:
        """One pass: take or renew the lease, run the due jobs; returns the jobs that ran."""
        with self.factory() as session, session.begin():
            if not lease.acquire(session, self.holder, LEASE_TTL, now=self.clock()):
                return []
        ran = []
        for job in self.jobs:
            if self.stop.is_set():
                break
            now = self.clock()
            with self.factory() as session:
                every = job.every(session)
                runs = lease.last_runs(session)
            if every is None or not lease.due(runs, job.name, every, now):
                continue
            outcome: dict[str, Any]
            try:
                result = job.run(self.factory)
                outcome = {"ok": True, "result": result}
                log.info("scheduler: %s done: %s", job.name, result)
            except Exception as exc:
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
                log.exception("scheduler: %s failed", job.name)
            with self.factory() as session, session.begin():
                lease.record_run(session, job.name, now, outcome)
                # Renewed after each job: a long job must not let another process take over.
                lease.acquire(session, self.holder, LEASE_TTL, now=self.clock())
            ran.append(job.name)
        return ran

    def interval(self) -> float:
        """Seconds between passes (`hygiene.scheduler_interval_minutes`)."""
        with self.factory() as session:
            return 60.0 * float(
                settings_service.get_valid(session, "hygiene.scheduler_interval_minutes")
            )

    def run_forever(self) -> None:
        """Loops until `stop` is set; an error in one pass is logged and the loop goes on."""
        while not self.stop.is_set():
            wait = 300.0
            try:
                self.run_once()
                wait = self.interval()
            except Exception:
                log.exception("scheduler pass failed; retrying in %ss", wait)
            self.stop.wait(wait)
        try:
            with self.factory() as session, session.begin():
                lease.release(session, self.holder)
        except Exception:
            log.exception("scheduler: could not release the lease")


def start_in_thread(loop: SchedulerLoop) -> threading.Thread:
    """Runs the loop in a daemon thread; set `loop.stop` to end it."""
    thread = threading.Thread(target=loop.run_forever, name="stmails-scheduler", daemon=True)
    thread.start()
    return thread
