"""Bulk import through the API: `PUT /api/suppressions`, 10,000 entries per request, over real HTTP.

Starts `stmails`' app under uvicorn in another process on a fresh (migrated) SQLite database,
then sends the entries in requests of 10,000 (one after another, as a client script would),
and prints entries/s, request latencies and the total, then verifies the row count and a lookup.
Target: 1,000,000 entries in under 60 s on SQLite.

    .venv/bin/python benchmarks/suppressions_import.py              # 1,000,000 entries
    .venv/bin/python benchmarks/suppressions_import.py --quick      # 100,000 entries
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson

USER, TOKEN = "bench", "bench-token-0123456789abcdef"
PER_REQUEST = 10_000


def _serve(database_url: str, port: int, data_dir: str) -> None:
    import uvicorn

    # The factory `stmails serve` runs in its worker processes, configured the same way.
    os.environ.update(
        STMAILS_DATABASE_URL=database_url, STMAILS_DATA_DIR=data_dir, STMAILS_PORT=str(port)
    )
    uvicorn.run(
        "stmails.server:app_from_environment",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )


def _prepare(database_url: str) -> None:
    from stmails.config import Settings
    from stmails.db.engine import session_factory
    from stmails.db.migrate import open_database
    from stmails.services import users

    engine = open_database(Settings(database_url=database_url))
    with session_factory(engine)() as session:
        users.create_api_user(session, USER, TOKEN)
        session.commit()
    engine.dispose()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (None where /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of the line, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _payload(start: int, count: int) -> bytes:
    entries = []
    for n in range(start, start + count):
        entry: dict[str, object] = {"recipient": f"person{n}@example{n % 97}.com"}
        if n % 3 == 0:
            entry["reason"] = "hard_bounce"
            entry["description"] = "550 5.1.1 user unknown"
        elif n % 3 == 1:
            entry["reason"] = "unsubscribe"
            entry["source"] = "legacy-esp"
        else:
            entry["reason"] = "import"
        entries.append(entry)
    return orjson.dumps({"recipients": entries})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 entries")
    args = parser.parse_args(argv)
    total = 100_000 if args.quick else args.entries

    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as folder:
        database_url = f"sqlite:///{folder}/bench.db"
        _prepare(database_url)
        port = _free_port()
        server = multiprocessing.Process(
            target=_serve, args=(database_url, port, folder), daemon=True
        )
        server.start()
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, auth=(USER, TOKEN), timeout=120) as client:
                for _ in range(200):
                    try:
                        client.get("/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                payloads = [
                    _payload(start, min(PER_REQUEST, total - start))
                    for start in range(0, total, PER_REQUEST)
                ]
                latencies = []
                assert server.pid is not None
                cpu_before = _cpu_seconds(server.pid)
                started = time.perf_counter()
                for body in payloads:
                    t0 = time.perf_counter()
                    response = client.put(
                        "/api/suppressions",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    latencies.append(time.perf_counter() - t0)
                    if response.status_code != 200:
                        print(f"request failed: {response.status_code} {response.text[:200]}")
                        return 1
                elapsed = time.perf_counter() - started
                cpu_after = _cpu_seconds(server.pid)
                listing = client.get("/api/suppressions", params={"per_page": 1}).json()["data"]
                lookup = client.get(
                    f"/api/suppressions/person{total - 1}@example{(total - 1) % 97}.com"
                )
        finally:
            server.terminate()
            server.join(10)
        size = os.path.getsize(f"{folder}/bench.db")

    stored = listing["total"]
    print("suppressions_import benchmark")
    print(
        f"  how: uvicorn (1 process) + SQLite (WAL) on a fresh migrated database, "
        f"{len(latencies)} sequential PUT /api/suppressions requests of up to {PER_REQUEST:,} "
        f"entries over HTTP, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"  machine load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"  imported {total:,} entries in {elapsed:.1f} s = {total / elapsed:,.0f} entries/s "
        f"(target: 1,000,000 in < 60 s)"
    )
    print(
        f"  request latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms; database file {size / 1e6:.0f} MB"
    )
    if cpu_before is not None and cpu_after is not None:
        cpu = cpu_after - cpu_before
        print(
            f"  server CPU: {cpu:.1f} s in all = {cpu / len(latencies) * 1000:.0f} ms per request "
            f"of {PER_REQUEST:,} = {cpu / total * 1e6:.1f} µs per entry"
        )
    print(f"  rows stored: {stored:,}; last entry found: {lookup.status_code == 200}")
    return 0 if stored == total and lookup.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
