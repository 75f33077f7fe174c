"""Throughput of the tracking routes (open pixel and tracked links) on the real server, SQLite.

The same method as `ingest_http.py`: `stmails serve` as a subprocess on a free loopback port,
driven from concurrent HTTP/1.1 keep-alive connections (one request in flight each), measured
beside the same server's `GET /health`. The database holds a sent campaign with tracked links
and `--subscribers` recipients (individual tracking on, so every hit resolves its subscriber,
runs the machine rules against the send and marks first opens and clicks). The hits are 80 %
opens and 20 % clicks by `--subscribers` readers with a browser's user agent. Afterwards it checks
that every acknowledged hit is stored exactly once and that the figures (the rollups) count each
one, then measures requests with unknown uuids: each must be a 404 and write nothing.

    .venv/bin/python benchmarks/tracking_http.py            # full run (~1 minute)
    .venv/bin/python benchmarks/tracking_http.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_http import LoadResult, cpu_seconds, exchange, merge, server
from stmails.db.engine import make_engine
from stmails.db.migrate import upgrade
from stmails.db.models import (
    Campaign,
    CampaignList,
    CampaignSend,
    CampaignView,
    Link,
    LinkClick,
    MailingList,
    Setting,
    Subscriber,
    SubscriberList,
)
from stmails.services.analytics.rollups import Scope, totals
from stmails.services.analytics.window import Window

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
LINKS = 5


def seed(database_url: str, subscribers: int) -> tuple[str, list[str], list[str]]:
    """A sent campaign with `subscribers` recipients and LINKS tracked links; returns the
    campaign uuid, the subscriber uuids and the link uuids."""
    engine = make_engine(database_url)
    upgrade(engine)
    sent_at = datetime.now(UTC) - timedelta(hours=1)
    people = [str(uuid.uuid4()) for _ in range(subscribers)]
    links = [str(uuid.uuid4()) for _ in range(LINKS)]
    campaign_uuid = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(insert(Setting), [{"key": "privacy.individual_tracking", "value": True}])
        connection.execute(insert(MailingList).values(id=1, name="Readers", uuid=str(uuid.uuid4())))
        connection.execute(
            insert(Campaign).values(
                id=1, uuid=campaign_uuid, name="Bench", subject="Bench", status="finished"
            )
        )
        connection.execute(insert(CampaignList).values(campaign_id=1, list_id=1))
        connection.execute(
            insert(Subscriber),
            [
                {"id": n + 1, "uuid": people[n], "email": f"reader{n}@bench{n % 97}.example"}
                for n in range(subscribers)
            ],
        )
        connection.execute(
            insert(SubscriberList),
            [
                {"subscriber_id": n + 1, "list_id": 1, "status": "confirmed"}
                for n in range(subscribers)
            ],
        )
        connection.execute(
            insert(CampaignSend),
            [
                {"campaign_id": 1, "subscriber_id": n + 1, "status": "sent", "sent_at": sent_at}
                for n in range(subscribers)
            ],
        )
        connection.execute(
            insert(Link),
            [
                {
                    "id": n + 1,
                    "uuid": links[n],
                    "campaign_id": 1,
                    "url": f"https://shop.example/{n}",
                }
                for n in range(LINKS)
            ],
        )
    engine.dispose()
    return campaign_uuid, people, links


def hit_request(
    host: str, campaign: str, people: list[str], links: list[str]
) -> Callable[[int], bytes]:
    """Request n: an open (4 in 5) or a click of a random reader."""
    generator = random.Random(7)

    def make(number: int) -> bytes:
        person = people[generator.randrange(len(people))]
        if number % 5:
            path = f"/campaign/{campaign}/{person}/px.png"
        else:
            path = f"/link/{links[generator.randrange(len(links))]}/{campaign}/{person}"
        return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {BROWSER}\r\n\r\n").encode()

    return make


def unknown_request(host: str, campaign: str, people: list[str]) -> Callable[[int], bytes]:
    """Request n: a pixel or link with one unknown (random) uuid."""

    def make(number: int) -> bytes:
        stranger = str(uuid.uuid4())
        path = (
            f"/campaign/{campaign}/{stranger}/px.png"
            if number % 2
            else f"/link/{stranger}/{campaign}/{people[number % len(people)]}"
        )
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    return make


async def _client(
    port: int, deadline: float, numbers: Iterator[int], make: Callable[[int], bytes],
    expect: tuple[bytes, ...], result: LoadResult,
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            number = next(numbers)
            started = time.perf_counter()
            head = await exchange(reader, writer, make(number))
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if head.startswith(expect):
                result.ok += 1
                result.acked_ids.append(number)
            else:
                result.failed += 1
    finally:
        writer.close()


async def load(
    port: int, clients: int, seconds: float, make: Callable[[int], bytes], expect: tuple[bytes, ...]
) -> LoadResult:
    result = LoadResult(0, 0, 0.0, [], [])
    numbers = iter(range(1, 10**9))
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_client(port, deadline, numbers, make, expect, result) for _ in range(clients))
    )
    result.seconds = time.perf_counter() - started
    return result


def stored(database_url: str) -> tuple[int, int, dict[str, int]]:
    """(views, clicks) rows, and the figures the rollups give."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            views = connection.scalar(select(func.count()).select_from(CampaignView)) or 0
            clicks = connection.scalar(select(func.count()).select_from(LinkClick)) or 0
        with Session(engine) as session:
            figures = totals(session, Window(), Scope(campaign_mail=False))
    finally:
        engine.dispose()
    return int(views), int(clicks), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--clients", type=int, default=48, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=1.5, help="warm-up per path")
    parser.add_argument("--rounds", type=int, default=4, help="alternations with /health")
    parser.add_argument("--subscribers", type=int, default=20_000, help="recipients")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds, args.subscribers = 2.0, 0.5, 2, 2_000
    print(
        f"tracking_http: {args.clients} keep-alive connections (one request in flight each); "
        f"{args.seconds:.0f} s per path in {args.rounds} alternating rounds after "
        f"{args.warmup:.1f} s warm-up; {args.subscribers:,} readers; the load generator shares "
        f"the machine's {os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f})."
    )
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        campaign, people, links = seed(url, args.subscribers)
        with server(url, 1, work) as (port, pid):
            host = f"127.0.0.1:{port}"
            hits = hit_request(host, campaign, people, links)
            health = lambda _: f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()  # noqa: E731
            good = (b"HTTP/1.1 200", b"HTTP/1.1 302")
            asyncio.run(load(port, args.clients, args.warmup, health, good))
            warm = asyncio.run(load(port, args.clients, args.warmup, hits, good))
            health_rounds, hit_rounds = [], []
            hit_cpu = 0.0
            for _ in range(args.rounds):
                health_rounds.append(
                    asyncio.run(load(port, args.clients, args.seconds / args.rounds, health, good))
                )
                before = cpu_seconds(pid)
                hit_rounds.append(
                    asyncio.run(load(port, args.clients, args.seconds / args.rounds, hits, good))
                )
                hit_cpu += cpu_seconds(pid) - before
            baseline, measured = merge(health_rounds), merge(hit_rounds)
            time.sleep(3)  # one fold of the analytics worker
            views, clicks, figures = stored(url)
            before_unknown = views + clicks
            strangers = asyncio.run(
                load(port, args.clients, args.seconds / 2, unknown_request(host, campaign, people),
                     (b"HTTP/1.1 404",))
            )  # fmt: skip
            after_views, after_clicks, _ = stored(url)
        acked = measured.ok + warm.ok
        ratio = measured.rate / baseline.rate if baseline.rate else float("nan")
        print(
            f"hits (80 % opens)  {measured.rate:8.0f} hits/s  p50 {measured.percentile(0.5):6.1f} "
            f"ms  p99 {measured.percentile(0.99):6.1f} ms  failed {measured.failed}  | /health "
            f"{baseline.rate:6.0f} req/s  ratio {ratio:5.0%}  | server CPU "
            f"{1000 * hit_cpu / max(measured.ok, 1):.2f} ms per hit"
        )
        counted = figures["views"] + figures["machine_views"] + figures["clicks"]
        counted += figures["machine_clicks"]
        print(
            f"stored: {views} opens + {clicks} clicks = {views + clicks} rows for {acked} "
            f"acknowledged hits; the figures count {counted} (unique opens "
            f"{figures['unique_views']}, unique clicks {figures['unique_clicks']})"
        )
        print(
            f"unknown uuids      {strangers.rate:8.0f} req/s  p50 {strangers.percentile(0.5):6.1f} "
            f"ms  p99 {strangers.percentile(0.99):6.1f} ms  non-404 {strangers.failed}  | rows "
            f"written: {after_views + after_clicks - before_unknown}"
        )
        if views + clicks != acked or counted != acked:
            print("  ERROR: acknowledged hits and stored rows or figures differ")


if __name__ == "__main__":
    main()
