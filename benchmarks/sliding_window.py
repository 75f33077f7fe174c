"""The cost of the sliding window's count, asked before every campaign batch, on SQLite (or the
database of `--database-url`, e.g. PostgreSQL through scripts/with-postgres.sh).

Builds `--sends` campaign sends (default 1,000,000: 20 campaigns to 50,000 subscribers, spread
over the last 60 days, with `--recent` of them, default 12,000, in the last hour), then asks
`SlidingWindow.room()` `--repeat` times for a full 1-hour window of 10,000 (the count and the
lookup of when room comes back) and for a 24-hour window of 100,000 (room left): p50, p95 and
the largest time, against the 50 ms target (a batch of 500 takes far longer to send).

    .venv/bin/python benchmarks/sliding_window.py
    .venv/bin/python benchmarks/sliding_window.py --quick          # 100,000 sends
    scripts/with-postgres.sh .venv/bin/python benchmarks/sliding_window.py \
        --database-url '$STMAILS_TEST_DATABASE_URL'
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert, text

from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import Campaign, CampaignSend, Subscriber
from stmails.db.types import utcnow
from stmails.services.sending.window import SlidingWindow

TARGET_MS = 50.0
CAMPAIGNS = 20


def build(url: str, sends: int, recent: int, now: datetime) -> None:
    rng = random.Random(5)
    per_campaign = sends // CAMPAIGNS
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for table in ("campaign_sends", "campaigns", "subscribers"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(
            insert(Subscriber),
            [
                {"id": n, "uuid": str(uuid.uuid4()), "email": f"user{n}@example.com"}
                for n in range(1, per_campaign + 1)
            ],
        )
        connection.execute(
            insert(Campaign),
            [
                {"id": c, "uuid": str(uuid.uuid4()), "name": f"C{c}", "subject": "S"}
                for c in range(1, CAMPAIGNS + 1)
            ],
        )
        made = 0
        for c in range(1, CAMPAIGNS + 1):
            rows = []
            for n in range(1, per_campaign + 1):
                if made < recent:
                    at = now - timedelta(seconds=rng.uniform(0, 3600))
                else:
                    at = now - timedelta(seconds=rng.uniform(3600, 60 * 86400))
                status = "sent" if rng.random() < 0.95 else "failed"
                rows.append({"campaign_id": c, "subscriber_id": n, "status": status, "sent_at": at})
                made += 1
            connection.execute(insert(CampaignSend), rows)
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table that size soon after: statistics and the visibility
        # map (index-only scans).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE campaign_sends"))
    engine.dispose()


def measure(url: str, window: SlidingWindow, now: datetime, repeat: int, label: str) -> float:
    engine = make_engine(url)
    sessions = session_factory(engine, readonly=True)
    times = []
    with sessions() as session:
        room = window.room(session, now)
        for _ in range(repeat):
            started = time.perf_counter()
            window.room(session, now)
            times.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    times.sort()
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
    verdict = "ok" if p95 < TARGET_MS else "OVER"
    print(
        f"  {label:<34} free {room.free:>6}  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
        f"max {times[-1]:6.2f} ms  {verdict}"
    )
    return p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=12_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100,000 sends")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    sends = 100_000 if args.quick else args.sends
    url = args.database_url or os.environ.get("STMAILS_BENCH_DATABASE_URL", "")
    scratch = None
    if not url:
        scratch = tempfile.TemporaryDirectory()
        url = f"sqlite:///{scratch.name}/window.db"
    now = utcnow()
    started = time.perf_counter()
    build(url, sends, min(args.recent, sends), now)
    took = time.perf_counter() - started
    print(f"{sends:,} sends ({args.recent:,} in the last hour) built in {took:.1f} s")
    worst = max(
        measure(url, SlidingWindow(3600, 10_000), now, args.repeat, "1h window of 10,000 (full)"),
        measure(url, SlidingWindow(86400, 100_000), now, args.repeat, "24h window of 100,000"),
    )
    if scratch is not None:
        scratch.cleanup()
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
