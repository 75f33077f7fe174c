"""Server time of the admin dashboard over a large history, on SQLite.

Builds the history of benchmarks/deliverability_queries.py (default 1,000,000 campaign sends,
100,000 bounces, opens and clicks, the rollups folded), runs `stmails serve` on it, signs in
through the login form like a browser, then asks `--repeat` times (one keep-alive connection,
after one warm-up) for the dashboard page of each period and for the API answers its charts
read (one breakdown shared by every chart, and the lists). Prints p50, p95 and the largest
time of each, against the 200 ms target of issue 14 (loopback round trips: an upper bound of
the server's time).

    .venv/bin/python benchmarks/dashboard_page.py                 # full run (a few minutes)
    .venv/bin/python benchmarks/dashboard_page.py --quick         # 100,000 sends
    .venv/bin/python benchmarks/dashboard_page.py --database /tmp/bench.db   # build once, reuse
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from html import unescape
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deliverability_queries import build
from ingest_http import server

ADMIN = ("admin", "bench-admin-password")
TARGET_MS = 200.0


def signed_in(port: int) -> httpx.Client:
    """A client holding an admin session, signed in through the login form."""
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(
        base_url=base, headers={"Origin": base}, timeout=60, follow_redirects=True
    )
    login = client.get("/admin/login").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', login)
    assert token, "no CSRF token on the login page"
    answer = client.post(
        "/admin/login",
        data={"csrf_token": token.group(1), "username": ADMIN[0], "password": ADMIN[1]},
    )
    answer.raise_for_status()
    assert 'data-figure="sent"' in answer.text, "the dashboard shows no summary"
    return client


def measure(client: httpx.Client, label: str, path: str, repeat: int) -> float:
    answer = client.get(path)
    answer.raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    times.sort()
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
    verdict = "ok" if p95 < TARGET_MS else "OVER"
    print(f"  {label:<40} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms  {verdict}")
    return p95


def run_cases(client: httpx.Client, repeat: int) -> float:
    """Times the page of each period and the API answers its charts read; the slowest p95."""
    slowest = 0.0
    for days, label in ((30, "last 30 days"), (90, "last 90 days"), (0, "all time")):
        path = f"/admin/?days={days}"
        page = client.get(path).text
        slowest = max(slowest, measure(client, f"page, {label}", path, repeat))
        for src in sorted(set(re.findall(r'data-chart-src="([^"]+)"', page))):
            name = "charts: breakdown" if "breakdown" in src else "charts: lists"
            slowest = max(slowest, measure(client, f"{name}, {label}", unescape(src), repeat))
    polled = measure(client, "running campaigns (htmx poll)", "/admin/dashboard/campaigns", repeat)
    return max(slowest, polled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--bounces", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--database", default="", help="SQLite file to build (or reuse when it exists) and keep"
    )
    args = parser.parse_args()
    if args.quick:
        args.sends, args.bounces, args.views, args.repeat = 100_000, 10_000, 12_000, 10
    print(
        f"dashboard_page: SQLite, {args.repeat} requests each after one warm-up, over HTTP on "
        f"one keep-alive connection; {os.cpu_count()} cores shared (load average now "
        f"{os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        path = Path(args.database).resolve() if args.database else work / "bench.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, args.sends, args.bounces, args.views)
        with server(url, 1, work) as (port, _):
            client = signed_in(port)
            try:
                slowest = run_cases(client, args.repeat)
            finally:
                client.close()
        print(f"slowest p95: {slowest:.1f} ms (target: under {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
