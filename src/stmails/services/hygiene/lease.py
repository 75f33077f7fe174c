"""One scheduler per deployment: a lease row that several processes compete for.

`acquire()` is one UPDATE (take the lease when it is ours or has expired) and, for a lease
that does not exist yet, one INSERT that does nothing on a clash: atomic on SQLite (one writer
at a time) and on PostgreSQL (the row lock serialises the UPDATEs), with no advisory lock
needed. The holder renews it on every pass; a process that dies stops renewing and another
takes over once `expires_at` has passed.

`last_runs` keeps, per job, when it last started and finished and what it did (or the error),
so the admin sees the scheduler's work (`GET /api/hygiene/scheduler`) and a job's next run is
computed from its last start, whichever process ran it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from stmails.db.models import SchedulerLease
from stmails.db.types import utcnow
from stmails.db.upsert import insert_or_ignore

__all__ = ["LEASE", "acquire", "due", "last_runs", "record_run", "release"]

LEASE = "hygiene"
_TABLE = cast(Table, SchedulerLease.__table__)


def acquire(
    session: Session, holder: str, ttl: timedelta, *, name: str = LEASE, now: datetime | None = None
) -> bool:
    """Takes or renews the lease `name` for `holder` until now + `ttl`; whether `holder` holds
    it (the caller commits at once, so others see it)."""
    now = now or utcnow()
    taken = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == name,
            (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now),
        )
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0):
        return True
    inserted = insert_or_ignore(
        session,
        _TABLE,
        {"name": name, "holder": holder, "expires_at": now + ttl, "last_runs": {}},
        _TABLE.c.name,
    )
    return inserted is not None


def release(session: Session, holder: str, *, name: str = LEASE) -> None:
    """Gives the lease up (at shutdown), so another process need not wait for it to expire."""
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def last_runs(session: Session, *, name: str = LEASE) -> dict[str, Any]:
    """Each job's last run: `{"job": {"started_at", "finished_at", "ok", "result"|"error"}}`,
    with the lease's holder and expiry under `_lease`."""
    row = session.scalar(select(SchedulerLease).where(SchedulerLease.name == name))
    if row is None:
        return {}
    runs = dict(row.last_runs or {})
    runs["_lease"] = {"holder": row.holder, "expires_at": row.expires_at.isoformat()}
    return runs


def record_run(
    session: Session, job: str, started: datetime, outcome: dict[str, Any], *, name: str = LEASE
) -> None:
    """Stores what `job` did (started at `started`); the caller commits."""
    row = session.scalar(select(SchedulerLease).where(SchedulerLease.name == name))
    if row is None:
        return
    runs = dict(row.last_runs or {})
    runs[job] = {"started_at": started.isoformat(), "finished_at": utcnow().isoformat(), **outcome}
    row.last_runs = runs


def due(runs: dict[str, Any], job: str, every: timedelta, now: datetime) -> bool:
    """Whether `job` should run now: never ran, or its last start is `every` ago."""
    last = runs.get(job)
    if not isinstance(last, dict) or "started_at" not in last:
        return True
    return datetime.fromisoformat(str(last["started_at"])) + every <= now
