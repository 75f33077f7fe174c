"""Full bounce-risk rescoring: 1,000,000 subscribers scored in under 60 s on SQLite?

Fills one SQLite database (WAL, as `stmails serve` uses it) with N subscribers (1,000,000 by
default) and a history around them: one in five has a stored verification (valid, risky with
role or catch-all, unknown, invalid), one in ten a soft bounce, one in a hundred a hard bounce,
one in five hundred a complaint, one in three an open by a person (and some machine opens),
and sends to 5,000 domains (some of which are risky). Then it runs `rescore_all()` twice and
prints:

- the first run: every subscriber scored and written (the worst case);
- the second run at the same moment: every subscriber scored, nothing changed, nothing written
  (the daily run's usual case is between the two);
- the levels found, as a check that the history was scored;
- the CPU time of each run (the process's own; SQLite works in-process): on a busy machine
  the wall-clock time is mostly waiting for a core.

    .venv/bin/python benchmarks/risk_score.py                    # 1,000,000 subscribers
    .venv/bin/python benchmarks/risk_score.py --subscribers 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import make_engine, session_factory
from stmails.db.models import (
    Base,
    Bounce,
    Campaign,
    CampaignView,
    Subscriber,
    SubscriberHygiene,
)
from stmails.services.hygiene import risk

NOW = datetime(2026, 12, 1, tzinfo=UTC)
STEP = 50_000


def fill(factory: sessionmaker[Session], count: int, rng: random.Random) -> None:
    """The subscribers and their history, written with bulk inserts (the analytics triggers
    run as they do in production)."""
    with factory() as session, session.begin():
        session.add(Campaign(name="bench", subject="bench"))
    verdicts = [
        ("valid", []),
        ("risky", ["role"]),
        ("risky", ["catch_all"]),
        ("unknown", ["timeout"]),
        ("invalid", ["mailbox_not_found"]),
    ]
    for first in range(1, count + 1, STEP):
        last = min(count, first + STEP - 1)
        subscribers = []
        hygiene = []
        views = []
        bounces = []
        for n in range(first, last + 1):
            local = "info" if n % 97 == 0 else f"person{n}"
            subscribers.append(
                {
                    "id": n,
                    "uuid": f"00000000-0000-4000-8000-{n:012d}",
                    "email": f"{local}.{n}@domain{n % 5000}.example",
                    "name": "",
                    "attribs": {},
                    "status": "enabled",
                    "created_at": NOW - timedelta(days=rng.randrange(1, 1200)),
                    "updated_at": NOW,
                }
            )
            if n % 5 == 0:
                result, reasons = verdicts[rng.randrange(len(verdicts))]
                hygiene.append(
                    {
                        "subscriber_id": n,
                        "risk_score": 0,
                        "risk_level": "low",
                        "risk_factors": [],
                        "scored_at": None,
                        "verify_result": result,
                        "verify_reasons": reasons,
                        "verified_at": NOW - timedelta(days=rng.randrange(1, 400)),
                        "state": "active",
                        "state_at": None,
                        "reengage_sent": 0,
                        "reengage_last_at": None,
                    }
                )
            if n % 3 == 0:
                views.append(
                    {
                        "campaign_id": 1,
                        "subscriber_id": n,
                        "machine": "apple_mpp" if n % 7 == 0 else "",
                        "created_at": NOW - timedelta(days=rng.randrange(1, 300)),
                    }
                )
            kind = (
                "complaint"
                if n % 500 == 0
                else "hard"
                if n % 100 == 0
                else "soft"
                if n % 10 == 0
                else ""
            )
            if kind:
                bounces.append(
                    {
                        "subscriber_id": n,
                        "email": f"person{n}@domain{n % 5000}.example",
                        "campaign_id": 1,
                        "type": kind,
                        "effective_type": kind,
                        "source": "bench",
                        "dedup_key": f"bench:{n}",
                        "count_key": "bench",
                        "meta": {},
                        "created_at": NOW - timedelta(days=rng.randrange(1, 300)),
                        "recorded_at": NOW,
                    }
                )
        with factory() as session, session.begin():
            session.execute(insert(Subscriber), subscribers)
            if hygiene:
                session.execute(insert(SubscriberHygiene), hygiene)
            if views:
                session.execute(insert(CampaignView), views)
            if bounces:
                session.execute(insert(Bounce), bounces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk.db"
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        factory = session_factory(engine)
        began = time.monotonic()
        fill(factory, args.subscribers, rng)
        filled = time.monotonic() - began
        cpu = time.process_time()
        first = risk.rescore_all(factory, now=NOW)
        first_cpu = time.process_time() - cpu
        cpu = time.process_time()
        second = risk.rescore_all(factory, now=NOW)
        second_cpu = time.process_time() - cpu
        with factory() as session:
            levels = dict(
                session.execute(
                    select(SubscriberHygiene.risk_level, func.count()).group_by(
                        SubscriberHygiene.risk_level
                    )
                ).all()
            )
            pages = session.execute(text("PRAGMA page_count")).scalar() or 0
        engine.dispose()
        size_mb = pages * 4096 / 1e6
    print(f"risk_score: {args.subscribers:,} subscribers on SQLite (WAL), seed {args.seed}")
    print(f"  python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"  fill: {filled:.1f} s, database about {size_mb:.0f} MB")
    print(
        f"  first full run:  {first.seconds:6.1f} s  scored {first.subscribers:,}, "
        f"written {first.changed:,}  ({first.subscribers / first.seconds:,.0f} subscribers/s),"
        f" {first_cpu:.1f} s of CPU in this process"
    )
    print(
        f"  second full run: {second.seconds:6.1f} s  scored {second.subscribers:,}, "
        f"written {second.changed:,}, {second_cpu:.1f} s of CPU in this process"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"  load average at the end: {load:.1f} (figures above are wall-clock seconds)")
    print(f"  levels: {dict(sorted(levels.items()))}")
    target = 60.0 * args.subscribers / 1_000_000
    verdict = "met" if first.seconds < target else "MISSED"
    print(f"  target: < {target:.0f} s for this size: {verdict}")
    return 0 if first.seconds < target else 1


if __name__ == "__main__":
    sys.exit(main())
