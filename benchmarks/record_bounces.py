"""How fast `services.bounces.record()` stores and judges bounces, without HTTP.

Seeds subscribers and campaigns, then records a mix of events (hard, soft, complaints, unknown
addresses, and 5% duplicates) in two ways: `record()`, one transaction per event, and
`record_many()`, 64 events per transaction (what a group-committing web layer can do).
Prints events/s for each and, as the baseline, the rate of bare single-row INSERTs into a
table of the same database in the same transaction shapes. Finally checks that every distinct
event was stored exactly once.

    .venv/bin/python benchmarks/record_bounces.py [--quick] [--database-url URL]

Without --database-url a temporary SQLite file is used; pass a PostgreSQL URL
(postgresql+psycopg://...) to measure PostgreSQL. The URL's database is emptied first. With a
throw-away server:

    scripts/with-postgres.sh .venv/bin/python benchmarks/record_bounces.py --database-url '$URL'
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from stmails.core.event import Event, EventType
from stmails.db.engine import make_engine, session_factory
from stmails.db.models import Base, Bounce, Campaign, Subscriber
from stmails.services.bounces import record, record_many

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(n: int, subscribers: int, campaigns: list[str], seed: int = 7) -> list[Event]:
    """`n` events over the seeded subscribers and campaigns; about 5% repeat an earlier one."""
    rng = random.Random(seed)
    kinds: list[EventType] = ["soft"] * 6 + ["hard"] * 3 + ["complaint"]
    events: list[Event] = []
    for i in range(n):
        if events and rng.random() < 0.05:
            events.append(rng.choice(events))
            continue
        who = rng.randrange(subscribers * 11 // 10)
        # One address in eleven is not a subscriber.
        email = f"user{who}@example.org" if who < subscribers else f"stranger{who}@example.net"
        events.append(
            Event(
                source=rng.choice(["api", "ses", "mailbox"]),
                type=rng.choice(kinds),
                email=email,
                campaign_uuid=rng.choice(campaigns) if rng.random() < 0.8 else "",
                reason="userunknown",
                status="5.1.1",
                diagnostic="550 5.1.1 user unknown",
                event_id=f"evt-{i}",
                occurred_at=T0 + timedelta(minutes=i),
            )
        )
    return events


def seed(session: Session, subscribers: int, campaigns: int) -> list[str]:
    session.add_all(Subscriber(email=f"user{i}@example.org") for i in range(subscribers))
    camps = [Campaign(name=f"c{i}", subject="s") for i in range(campaigns)]
    session.add_all(camps)
    session.commit()
    return [c.uuid for c in camps]


def timed(label: str, count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    rate = count / elapsed
    print(f"  {label:<44} {count:>6} in {elapsed:6.2f} s = {rate:8.0f}/s")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args()
    n = 400 if args.quick else 4000
    batch = 64
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        print(f"record_bounces: {engine.dialect.name}, {n} events per run, batches of {batch}")
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        baseline = Table(
            "bench_rows", MetaData(), Column("id", Integer, primary_key=True), Column("v", String)
        )
        baseline.drop(engine, checkfirst=True)
        baseline.create(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            campaigns = seed(session, 2000, 20)
        single = make_events(n, 2000, campaigns, seed=1)
        batched = [
            Event(
                **{
                    **{f: getattr(e, f) for f in e.__dataclass_fields__},
                    "event_id": "b" + e.event_id,
                }
            )
            for e in make_events(n, 2000, campaigns, seed=2)
        ]

        def one_per_commit() -> None:
            for event in single:
                with sessions() as session:
                    record(session, event)
                    session.commit()

        def in_batches() -> None:
            for start in range(0, n, batch):
                with sessions() as session:
                    record_many(session, batched[start : start + batch])
                    session.commit()

        def bare_insert_per_commit() -> None:
            for i in range(n):
                with engine.begin() as conn:
                    conn.execute(insert(baseline).values(v=f"row {i}"))

        def bare_insert_batches() -> None:
            for start in range(0, n, batch):
                with engine.begin() as conn:
                    for i in range(start, min(start + batch, n)):
                        conn.execute(insert(baseline).values(v=f"row {i}"))

        r1 = timed("record(), one event per transaction", n, one_per_commit)
        b1 = timed("baseline: bare INSERT, one per transaction", n, bare_insert_per_commit)
        r2 = timed(f"record_many(), {batch} events per transaction", n, in_batches)
        b2 = timed(f"baseline: bare INSERT, {batch} per transaction", n, bare_insert_batches)
        print(f"  ratio record/bare INSERT: {r1 / b1:.2f} (single), {r2 / b2:.2f} (batched)")
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Bounce)) or 0
        expected = len({e.dedup_key() for e in single}) + len({e.dedup_key() for e in batched})
        verdict = "OK" if stored == expected else "MISMATCH"
        print(f"  stored exactly once: {stored} rows for {expected} distinct events: {verdict}")
        engine.dispose()
        return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
