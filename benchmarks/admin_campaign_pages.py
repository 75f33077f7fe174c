"""Server time of the admin Campaigns and Templates pages over a large history, on SQLite.

Builds the history of benchmarks/deliverability_queries.py (default 1,000,000 campaign sends
over 20 campaigns, 100,000 bounces, opens and clicks through the tracking writer), runs
`stmails serve` on it, signs in through the login form like a browser, and requests each page
`--repeat` times over HTTP (keep-alive): p50, p95 and the largest time per page are printed,
against the 200 ms target.

    .venv/bin/python benchmarks/admin_campaign_pages.py            # full run (a few minutes)
    .venv/bin/python benchmarks/admin_campaign_pages.py --quick    # 100,000 sends
    .venv/bin/python benchmarks/admin_campaign_pages.py --database /tmp/bench.db  # keep/reuse
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deliverability_queries import ASKED, build
from ingest_http import server

ADMIN = ("admin", "bench-admin-password")
TARGET_MS = 200.0


def sign_in(client: httpx.Client) -> None:
    """Signs in through the form (CSRF token and Origin, as a browser sends them)."""
    page = client.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token, page.text[:500]
    answer = client.post(
        "/admin/login",
        data={"csrf_token": token.group(1), "username": ADMIN[0], "password": ADMIN[1]},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert answer.status_code == 303, answer.text[:500]


def draft_campaign(client: httpx.Client) -> int:
    """A draft campaign to list 1 (50,000 subscribers) made through the page, so that its
    page runs the content check."""
    page = client.get("/admin/campaigns/new")
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token, page.text[:500]
    answer = client.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token.group(1),
            "name": "Benchmark draft",
            "subject": "Hello {{ .Subscriber.FirstName }}",
            "lists": "1",
            "content_type": "richtext",
            "body": '<p>News</p><p><a href="{{ UnsubscribeURL }}">Unsubscribe</a></p>',
        },
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert answer.status_code == 303, answer.text[:500]
    return int(answer.headers["location"].rsplit("/", 1)[1])


def measure(client: httpx.Client, label: str, path: str, repeat: int) -> float:
    answer = client.get(path, timeout=60)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    times.sort()
    p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
    verdict = "ok" if p95 < TARGET_MS else "OVER"
    print(f"  {label:<40} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {times[-1]:6.1f} ms  {verdict}")
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
        f"admin_campaign_pages: SQLite, {args.repeat} requests per page after one warm-up, over "
        f"HTTP on one keep-alive connection with a browser session; {os.cpu_count()} cores "
        f"shared (load average now {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        path = Path(args.database).resolve() if args.database else work / "bench.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            build(url, args.sends, args.bounces, args.views)
        campaign = ASKED["campaign"]
        cases = [
            ("campaigns list", "/admin/campaigns"),
            ("campaigns list, page 2", "/admin/campaigns?page=2"),
            ("campaigns list, search + status", "/admin/campaigns?q=campaign&status=finished"),
            ("campaign page", f"/admin/campaigns/{campaign}"),
            ("campaign progress fragment", f"/admin/campaigns/{campaign}/progress"),
            ("campaign statistics", f"/admin/campaigns/{campaign}/stats"),
            ("campaign preview", f"/admin/campaigns/{campaign}/preview"),
            ("templates list", "/admin/templates"),
        ]
        with server(url, 1, work) as (port, _):
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
                sign_in(client)
                draft = draft_campaign(client)
                cases.append(("draft campaign page (content check)", f"/admin/campaigns/{draft}"))
                slowest = max(measure(client, label, p, args.repeat) for label, p in cases)
        print(f"slowest p95: {slowest:.1f} ms (target: every page under {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
