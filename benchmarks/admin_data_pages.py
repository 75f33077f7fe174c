"""Server response times of the admin Bounces, Suppression, Users and Logs pages over a large
history, on SQLite.

Writes `--bounces` bounces (default 100,000, of every type, several reasons, sources, 20
campaigns and a long tail of domains) and `--suppressions` suppression entries (default
100,000) through the real tables (triggers included), runs `stmails serve`, signs in through
the login form and asks each page `--repeat` times over HTTP (keep-alive): p50, p95 and the
largest time per page, against the 200 ms target.

    .venv/bin/python benchmarks/admin_data_pages.py            # full run
    .venv/bin/python benchmarks/admin_data_pages.py --quick    # 10,000 of each
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_http import server
from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import Bounce, Campaign
from stmails.db.types import email_hash
from stmails.services import suppression

TARGET_MS = 200.0
START = datetime(2026, 6, 1, tzinfo=UTC)
REASONS = ["hostunknown", "mailboxfull", "userunknown", "spamdetected", "blocked", "expired"]
SOURCES = ["mailbox", "ses", "sendgrid", "api", "postmark"]
TYPES = ["hard", "soft", "complaint"]


def seed(url: str, bounces: int, suppressions: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    with engine.begin() as connection:
        campaigns = [
            {
                "uuid": str(uuid.uuid4()),
                "name": f"Campaign {n}",
                "subject": "s",
                "from_email": "a@example.com",
                "body": "",
            }
            for n in range(20)
        ]
        connection.execute(insert(Campaign), campaigns)
    chunk = 10_000
    for start in range(0, bounces, chunk):
        rows = []
        for n in range(start, min(start + chunk, bounces)):
            domain = f"d{rng.randrange(5000)}.example" if n % 3 else "gmail.com"
            email = f"user{n}@{domain}"
            kind = TYPES[n % 3]
            when = START + timedelta(minutes=n * 2)
            rows.append(
                {
                    "email": email,
                    "email_hash": email_hash(email),
                    "campaign_id": (n % 20) + 1,
                    "campaign_uuid": campaigns[n % 20]["uuid"],
                    "type": kind,
                    "effective_type": kind,
                    "reason": REASONS[n % len(REASONS)],
                    "status": "5.1.1",
                    "replycode": "550",
                    "diagnostic": f"550 5.1.1 <{email}>: Recipient address rejected",
                    "feedback_type": "",
                    "source": SOURCES[n % len(SOURCES)],
                    "dedup_key": f"bench:{n}",
                    "count_key": campaigns[n % 20]["uuid"],
                    "meta": {},
                    "created_at": when,
                    "recorded_at": when,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Bounce), rows)
    sessions = session_factory(engine)
    for start in range(0, suppressions, chunk):
        entries = [
            suppression.parse_entry(
                {"recipient": f"s{n}@sup{n % 997}.example", "reason": "hard_bounce"}
            )
            for n in range(start, min(start + chunk, suppressions))
        ]
        with sessions() as session:
            suppression.upsert_many(session, entries)
            session.commit()
    engine.dispose()


def sign_in(client: httpx.Client, base: str) -> None:
    page = client.get("/admin/login").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert token, page[:300]
    answer = client.post(
        "/admin/login",
        data={
            "csrf_token": token.group(1),
            "username": "admin",
            "password": "bench-admin-password",
        },
        headers={"Origin": base},
    )
    assert answer.status_code == 303, answer.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bounces", type=int, default=100_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.bounces, args.suppressions = 10_000, 10_000
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        began = time.perf_counter()
        seed(url, args.bounces, args.suppressions)
        print(
            f"seeded {args.bounces} bounces, {args.suppressions} suppressions "
            f"in {time.perf_counter() - began:.1f} s"
        )
        last_page = max(args.bounces // 50, 1)
        pages = [
            ("/admin/bounces", "bounces, first page"),
            (f"/admin/bounces?page={last_page // 2}", "bounces, middle page"),
            (f"/admin/bounces?page={last_page}", "bounces, last page"),
            ("/admin/bounces?type=hard&reason=hostunknown", "bounces, type+reason"),
            ("/admin/bounces?domain=gmail.com&page=20", "bounces, domain page 20"),
            (
                "/admin/bounces?campaign_id=3&from=2026-07-01&to=2026-07-31",
                "bounces, campaign+dates",
            ),
            ("/admin/bounces/5000", "one bounce"),
            ("/admin/suppression", "suppression, first page"),
            (
                f"/admin/suppression?page={max(args.suppressions // 50, 1)}",
                "suppression, last page",
            ),
            ("/admin/suppression?query=sup42.example", "suppression, search"),
            ("/admin/suppression?kind=address&reason=hard_bounce", "suppression, filters"),
            ("/admin/users", "users"),
            ("/admin/roles", "roles"),
            ("/admin/logs", "logs"),
        ]
        with server(url, 1, Path(folder)) as (port, _pid):
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                sign_in(client, base)
                print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
                worst = 0.0
                for path, label in pages:
                    times = []
                    for _ in range(args.repeat):
                        began = time.perf_counter()
                        answer = client.get(path)
                        times.append((time.perf_counter() - began) * 1000)
                        assert answer.status_code == 200, (path, answer.status_code)
                    times.sort()
                    p95 = times[max(int(len(times) * 0.95) - 1, 0)]
                    worst = max(worst, p95)
                    print(f"{label:32} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
                verdict = "meets" if worst < TARGET_MS else "MISSES"
                print(f"worst p95 {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
