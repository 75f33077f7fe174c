"""Response times of the deliverability API over a large history, on SQLite.

Builds a history of `--sends` campaign sends (default 1,000,000: 20 campaigns to 50,000 of 100,000
subscribers, one every three days) and `--bounces` bounces (default 100,000, of every type,
reason and source, some days after their send), plus opens and clicks recorded through the
tracking writer; recipient domains follow a long tail (a dozen large providers and thousands of
small domains). Everything is written through the real tables, so the triggers and the tracking
writer build the rollups as in production; the folder then folds them. Then `stmails serve` runs
on it and each endpoint is asked `--repeat` times over HTTP (keep-alive): p50, p95 and the
largest time per endpoint are printed, against the 300 ms target, with the server's CPU time per
request (read from /proc: what the request costs, apart from waiting for a shared core).

    .venv/bin/python benchmarks/deliverability_queries.py            # full run (a few minutes)
    .venv/bin/python benchmarks/deliverability_queries.py --quick    # 100,000 sends
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_http import API_TOKEN, API_USER, server
from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import (
    AnalyticsChange,
    Campaign,
    CampaignList,
    Link,
    MailingList,
    Setting,
    Subscriber,
    SubscriberList,
)
from stmails.services.analytics.rollups import fold_pending
from stmails.services.tracking.hits import Hit, record_hits

START = datetime(2026, 9, 1, 8, tzinfo=UTC)
PROVIDERS = [
    ("gmail.com", 30),
    ("yahoo.com", 9),
    ("hotmail.com", 7),
    ("outlook.com", 5),
    ("aol.com", 3),
    ("icloud.com", 4),
    ("qq.com", 4),
    ("163.com", 3),
    ("gmx.de", 2),
    ("web.de", 2),
    ("mail.ru", 2),
    ("comcast.net", 1),
]
REASONS = [
    ("hard", "user_unknown", 40),
    ("hard", "hostunknown", 8),
    ("hard", "rejected", 4),
    ("soft", "mailboxfull", 20),
    ("soft", "expired", 8),
    ("soft", "blocked", 6),
    ("soft", "spamdetected", 4),
    ("complaint", "feedback", 2),
]
SOURCES = [("smtp", 40), ("mailbox", 35), ("ses", 12), ("sendgrid", 8), ("api", 5)]
# What the timed requests ask about: a campaign, a list and a month of the built history.
ASKED: dict[str, object] = {"campaign": 7, "list": 2, "month": "2026-09"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"


def weighted(rng: random.Random, table: list[tuple[object, ...]]) -> tuple[object, ...]:
    return rng.choices(table, weights=[row[-1] for row in table])[0]  # type: ignore[list-item]


def addresses(rng: random.Random, count: int, tail_domains: int) -> list[str]:
    """`count` addresses: 70 % at the large providers, 15 % at a few hundred mid-sized domains,
    15 % over `tail_domains` small ones."""
    out = []
    for n in range(count):
        draw = rng.random()
        if draw < 0.7:
            domain = str(weighted(rng, PROVIDERS)[0])  # type: ignore[arg-type]
        elif draw < 0.85:
            # A few hundred mid-sized domains (ISPs, universities, large companies).
            domain = f"mid{int(rng.paretovariate(1.2)) % 400}.example"
        else:
            # The long tail: companies with a handful of subscribers each.
            domain = f"corp{rng.randrange(tail_domains)}.example"
        out.append(f"person{n}@{domain}")
    return out


def build(url: str, sends: int, bounces: int, views: int, seed: int = 11) -> dict[str, object]:
    """The history; returns what the queries ask about (ids, a month, sizes)."""
    rng = random.Random(seed)
    campaigns = 20
    per_campaign = sends // campaigns
    subscribers = per_campaign * 2
    engine = make_engine(url)
    upgrade(engine)
    people = addresses(rng, subscribers, tail_domains=max(1000, subscribers // 6))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(Setting), [{"key": "privacy.individual_tracking", "value": True}])
        connection.execute(
            insert(MailingList),
            [{"id": n, "uuid": str(uuid.uuid4()), "name": f"List {n}"} for n in (1, 2)],
        )
        connection.execute(
            insert(Subscriber),
            [
                {"id": n + 1, "uuid": str(uuid.uuid4()), "email": address}
                for n, address in enumerate(people)
            ],
        )
        connection.execute(
            insert(SubscriberList),
            [
                {"subscriber_id": n + 1, "list_id": 1 if n < per_campaign else 2}
                for n in range(subscribers)
            ],
        )
        connection.execute(
            insert(Campaign),
            [
                {
                    "id": c + 1,
                    "uuid": str(uuid.uuid4()),
                    "name": f"Campaign {c + 1}",
                    "subject": "News",
                    "status": "finished",
                }
                for c in range(campaigns)
            ],
        )
        connection.execute(
            insert(CampaignList),
            [{"campaign_id": c + 1, "list_id": 1 + c % 2} for c in range(campaigns)],
        )
        connection.execute(
            insert(Link),
            [
                {"id": c + 1, "uuid": str(uuid.uuid4()), "campaign_id": c + 1,
                 "url": f"https://shop.example/{c}"}
                for c in range(campaigns)
            ],
        )  # fmt: skip
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        sent_at: dict[tuple[int, int], datetime] = {}
        rows = []
        for c in range(campaigns):
            first = START + timedelta(days=3 * c)
            offset = 0 if c % 2 == 0 else per_campaign
            for n in range(per_campaign):
                subscriber_id = offset + n + 1
                at = first + timedelta(seconds=n * 7200 / per_campaign)
                refused = rng.random() < 0.03
                rows.append(
                    (
                        c + 1,
                        subscriber_id,
                        "failed" if refused else "sent",
                        "hard_bounce: 550 5.1.1" if refused else "",
                        at.replace(tzinfo=None).isoformat(sep=" "),
                    )
                )
                sent_at[(c + 1, subscriber_id)] = at
        cursor.executemany(
            "INSERT INTO campaign_sends (campaign_id, subscriber_id, status, reason, message_id,"
            " sent_at) VALUES (?, ?, ?, ?, '', ?)",
            rows,
        )
        pairs = rng.sample(sorted(sent_at), bounces)
        bounce_rows = []
        for number, (campaign_id, subscriber_id) in enumerate(pairs):
            kind, reason, _ = weighted(rng, REASONS)
            source = str(weighted(rng, SOURCES)[0])
            delay = (
                timedelta(minutes=rng.randint(1, 180))
                if source == "smtp"
                else timedelta(hours=rng.expovariate(1 / 30))
            )
            at = sent_at[(campaign_id, subscriber_id)] + delay
            bounce_rows.append(
                (
                    subscriber_id,
                    people[subscriber_id - 1],
                    campaign_id,
                    kind,
                    kind,
                    reason,
                    source,
                    f"bench:{number}",
                    at.replace(tzinfo=None).isoformat(sep=" "),
                )
            )
        cursor.executemany(
            "INSERT INTO bounces (subscriber_id, email, email_hash, campaign_id, campaign_uuid,"
            " type, effective_type, reason, status, replycode, diagnostic, feedback_type, source,"
            " dedup_key, count_key, meta, created_at, recorded_at)"
            " VALUES (?, ?, '', ?, '', ?, ?, ?, '', '', '', '', ?, ?, '', '{}', ?, ?)",
            [(*row, row[-1]) for row in bounce_rows],
        )
        raw.commit()
    finally:
        raw.close()
    sessions = session_factory(engine)
    with sessions() as session:
        uuids = {row[0]: row[1] for row in session.execute(select(Subscriber.id, Subscriber.uuid))}
    opened = rng.sample(sorted(sent_at), views)
    batch: list[Hit] = []
    for number, (campaign_id, subscriber_id) in enumerate(opened):
        at = sent_at[(campaign_id, subscriber_id)] + timedelta(hours=rng.expovariate(1 / 20))
        batch.append(Hit("view", campaign_id, uuids[subscriber_id], at, user_agent=BROWSER))
        if number % 6 == 0:
            click_at = at + timedelta(minutes=2)
            batch.append(Hit("click", campaign_id, uuids[subscriber_id], click_at,
                             link_id=campaign_id, user_agent=BROWSER))  # fmt: skip
        if len(batch) >= 500:
            with sessions() as session:
                record_hits(session, batch)
                session.commit()
            batch = []
    if batch:
        with sessions() as session:
            record_hits(session, batch)
            session.commit()
    built = time.perf_counter() - started
    with sessions() as session:
        pending = session.scalar(select(func.count()).select_from(AnalyticsChange))
    started = time.perf_counter()
    folded = fold_pending(sessions)
    fold_seconds = time.perf_counter() - started
    size = Path(url.removeprefix("sqlite:///")).stat().st_size
    engine.dispose()
    print(
        f"built {sends:,} sends, {bounces:,} bounces, {views:,} opens and {views // 6:,} clicks "
        f"over {campaigns} campaigns and {len(set(a.split('@')[1] for a in people)):,} domains in "
        f"{built:.0f} s; folded {folded:,} of {pending:,} deltas in {fold_seconds:.1f} s; "
        f"database {size / 1e6:.0f} MB"
    )
    return ASKED


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process `pid` and its children (Linux /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure(port: int, pid: int, label: str, path: str, repeat: int) -> float:
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=(API_USER, API_TOKEN)) as client:
        answer = client.get(path, timeout=60)
        answer.raise_for_status()
        used = cpu_seconds(pid)
        for _ in range(repeat):
            started = time.perf_counter()
            answer = client.get(path, timeout=60)
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        # The server's CPU per request (its background workers included), whatever the load.
        cpu = (cpu_seconds(pid) - used) * 1000 / repeat
    times.sort()
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
    verdict = "ok" if p95 < 300 else "OVER"
    print(
        f"  {label:<36} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms"
        f"  CPU {cpu:5.1f} ms  {verdict}"
    )
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--bounces", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--database", default="", help="SQLite file to build (or reuse when it exists) and keep"
    )
    args = parser.parse_args()
    if args.quick:
        args.sends, args.bounces, args.views, args.repeat = 100_000, 10_000, 12_000, 5
    print(
        f"deliverability_queries: SQLite, {args.repeat} requests per endpoint after one warm-up, "
        f"over HTTP on one keep-alive connection; {os.cpu_count()} cores shared (load average "
        f"now {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        path = Path(args.database).resolve() if args.database else work / "bench.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, args.sends, args.bounces, args.views)
        campaign, mailing_list, month = ASKED["campaign"], ASKED["list"], ASKED["month"]
        cases = [
            ("summary, all time", "/api/deliverability/summary"),
            ("summary, one campaign", f"/api/deliverability/summary?campaign_id={campaign}"),
            ("summary, one list", f"/api/deliverability/summary?list_id={mailing_list}"),
            ("summary, one month", "/api/deliverability/summary?from=2026-09-01&to=2026-09-30"),
            ("breakdown, all time", "/api/deliverability/breakdown"),
            ("breakdown, one campaign", f"/api/deliverability/breakdown?campaign_id={campaign}"),
            ("breakdown, one month", "/api/deliverability/breakdown?from=2026-09-01&to=2026-09-30"),
            # The dashboard's default period: whole months and days around them.
            ("breakdown, 90 days", "/api/deliverability/breakdown?from=2026-09-10&to=2026-12-08"),
            (
                "breakdown, one week by the hour",
                "/api/deliverability/breakdown?from=2026-09-01&to=2026-09-07&interval=hour",
            ),
            ("breakdown, all domains as CSV", "/api/deliverability/breakdown?limit=all&format=csv"),
            ("report, one month", f"/api/deliverability/report?month={month}"),
        ]
        with server(url, 1, work) as (port, pid):
            slowest = max(measure(port, pid, label, path, args.repeat) for label, path in cases)
        print(f"slowest p95: {slowest:.1f} ms (target: every endpoint under 300 ms)")


if __name__ == "__main__":
    main()
