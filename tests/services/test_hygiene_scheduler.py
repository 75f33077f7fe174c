"""The hygiene scheduler: one runner per deployment through the lease, jobs when due, every
run recorded (with the error of a failing job), and a dead holder replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber, SubscriberHygiene
from stmails.services.hygiene import lease
from stmails.workers.scheduler import LEASE_TTL, Job, SchedulerLoop, default_jobs


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_one_process_runs_the_jobs_and_another_takes_over_when_it_dies(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session, session.begin():
        session.add_all([Subscriber(email=f"s{i}@example.com", name="") for i in range(5)])
    clock = Clock()
    calls: list[str] = []

    def broken(factory: sessionmaker[Session]) -> dict[str, Any]:
        calls.append("broken")
        raise RuntimeError("the mail server is on fire")

    jobs = [*default_jobs(), Job("broken", lambda s: timedelta(hours=1), broken)]
    first = SchedulerLoop(session_maker, jobs=jobs, holder="first", clock=clock)
    second = SchedulerLoop(session_maker, jobs=jobs, holder="second", clock=clock)

    assert first.run_once() == ["risk_full", "broken"]
    # The other process does nothing while the lease is held.
    assert second.run_once() == []
    with session_maker() as session:
        scored = session.query(SubscriberHygiene).filter(SubscriberHygiene.scored_at.isnot(None))
        assert scored.count() == 5
        runs = lease.last_runs(session)
    assert runs["risk_full"]["ok"] is True and runs["risk_full"]["result"]["subscribers"] == 5
    assert runs["broken"] == {
        "started_at": clock.now.isoformat(),
        "finished_at": runs["broken"]["finished_at"],
        "ok": False,
        "error": "RuntimeError: the mail server is on fire",
    }
    assert runs["_lease"]["holder"] == "first"

    # Not due yet: nothing runs; an hour later only the hourly job does.
    clock.now += timedelta(minutes=10)
    assert first.run_once() == []
    clock.now += timedelta(hours=1)
    assert first.run_once() == ["broken"]

    # The first process dies (no more renewals): once its lease expires, the second runs.
    clock.now += LEASE_TTL - timedelta(minutes=1)
    assert second.run_once() == []
    clock.now += timedelta(minutes=2)
    # It takes the lease; the hourly job ran 31 minutes ago (by the first process).
    assert second.run_once() == []
    with session_maker() as session:
        assert lease.last_runs(session)["_lease"]["holder"] == "second"
    clock.now += timedelta(minutes=30)
    assert second.run_once() == ["broken"]
    assert first.run_once() == []
    # A day after the first full rescoring, it is due again.
    clock.now += timedelta(hours=24)
    assert second.run_once() == ["risk_full", "broken"]
    assert calls == ["broken"] * 4


def test_a_job_switched_off_never_runs(session_maker: sessionmaker[Session]) -> None:
    ran: list[str] = []
    job = Job("off", lambda s: None, lambda f: ran.append("x") or {})
    loop = SchedulerLoop(session_maker, jobs=[job], holder="h")
    assert loop.run_once() == []
    assert ran == []
