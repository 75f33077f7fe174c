"""Throughput of `POST /webhooks/bounce` on the real server, against its own `GET /health`.

For each database (SQLite; PostgreSQL with 1 and 2 workers when its binaries are installed) it
starts `stmails serve` as a subprocess on a free loopback port, drives it from concurrent HTTP/1.1
keep-alive connections, and prints acknowledged events/s, p50/p99 latency and the same server's
`/health` rate as the baseline ratio. Afterwards it checks the bounces table: every acknowledged
event must be stored exactly once.

The load generator shares the machine's cores with the server, so it is kept lean: raw asyncio
streams, one request in flight per connection (no pipelining), request bytes built from a
template by splicing in the event number, responses parsed by their Content-Length.

    .venv/bin/python benchmarks/ingest_http.py            # full run (~1 minute)
    .venv/bin/python benchmarks/ingest_http.py --quick    # smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
API_USER = "bench"
API_TOKEN = "bench-token-0123456789abcdef"
AUTH = "Basic " + base64.b64encode(f"{API_USER}:{API_TOKEN}".encode()).decode()


@dataclass
class LoadResult:
    """What one load phase measured."""

    ok: int
    failed: int
    seconds: float
    latencies_ms: list[float]
    acked_ids: list[int]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bounce_request(host: str, number: int) -> bytes:
    """One POST /webhooks/bounce request; the event id makes each event distinct."""
    body = (
        b'{"email":"user'
        + str(number % 5000).encode()
        + b'@bench.example","source":"bench","type":"soft","reason":"mailboxfull",'
        b'"status":"4.2.2","event_id":"' + str(number).encode() + b'","meta":{"n":1}}'
    )
    head = (
        f"POST /webhooks/bounce HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def health_request(host: str) -> bytes:
    return f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    """Sends one HTTP/1.1 request on a keep-alive connection; returns the response head after
    reading (and dropping) its body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return head


async def _client(
    port: int,
    deadline: float,
    next_number: Iterator[int],
    health: bool,
    result: LoadResult,
) -> None:
    host = f"127.0.0.1:{port}"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    fixed = health_request(host) if health else b""
    try:
        while time.perf_counter() < deadline:
            number = next(next_number)
            request = fixed or bounce_request(host, number)
            started = time.perf_counter()
            head = await exchange(reader, writer, request)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if head.startswith(b"HTTP/1.1 200"):
                result.ok += 1
                if not health:
                    result.acked_ids.append(number)
            else:
                result.failed += 1
    finally:
        writer.close()


async def load(port: int, clients: int, seconds: float, health: bool, first: int) -> LoadResult:
    """Runs `clients` connections for `seconds`; numbers events from `first`."""
    result = LoadResult(0, 0, 0.0, [], [])
    counter = iter(range(first, first + 100_000_000))
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_client(port, deadline, counter, health, result) for _ in range(clients))
    )
    result.seconds = time.perf_counter() - started
    return result


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process `pid` and its direct children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ..., utime (12th) and stime (13th).
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@contextmanager
def server(database_url: str, workers: int, data_dir: Path) -> Iterator[tuple[int, int]]:
    """Runs `stmails serve` on a free port until the block ends; yields (port, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "STMAILS_DATABASE_URL": database_url,
        "STMAILS_API_USER": API_USER,
        "STMAILS_API_TOKEN": API_TOKEN,
        "STMAILS_ADMIN_PASSWORD": "bench-admin-password",
        "STMAILS_DATA_DIR": str(data_dir),
    }
    log = open(data_dir / f"server-{port}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "stmails", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited; see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {log.name}")
            time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def check_stored(database_url: str, acked: list[int]) -> tuple[int, int, int]:
    """(acknowledged, acknowledged and stored exactly once, total bench rows)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT dedup_key, COUNT(*) FROM bounces WHERE source = 'bench' GROUP BY 1")
            ).all()
    finally:
        engine.dispose()
    counts = {key: count for key, count in rows}
    once = sum(1 for number in acked if counts.get(f"bench:{number}") == 1)
    return len(acked), once, sum(counts.values())


BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def constant(request):
    return Response(b'{"data":true}', media_type="application/json")


app = Starlette(routes=[Route("/health", constant)])
"""


def calibrate(work: Path, args: argparse.Namespace) -> None:
    """The machine's state now: a bare app answering a constant, under the same load."""
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(work), "--port",
         str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log",
         "--log-level", "warning"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(load(port, args.clients, args.warmup, health=True, first=0))
        before = cpu_seconds(process.pid)
        bare = asyncio.run(load(port, args.clients, args.seconds / args.rounds, True, 0))
        cpu_ms = 1000 * (cpu_seconds(process.pid) - before) / max(bare.ok, 1)
    finally:
        process.terminate()
        process.wait(10)
    print(
        f"calibration: a bare Starlette endpoint answering a constant does {bare.rate:.0f} req/s "
        f"on this machine now, {cpu_ms:.2f} ms server CPU per request (the issue quotes "
        "~2,600/s for a bare /health on an idle machine)"
    )


def merge(results: list[LoadResult]) -> LoadResult:
    """The rounds of one path as one result."""
    return LoadResult(
        ok=sum(r.ok for r in results),
        failed=sum(r.failed for r in results),
        seconds=sum(r.seconds for r in results),
        latencies_ms=[x for r in results for x in r.latencies_ms],
        acked_ids=[x for r in results for x in r.acked_ids],
    )


def run_case(
    label: str, database_url: str, workers: int, work: Path, args: argparse.Namespace
) -> None:
    with server(database_url, workers, work) as (port, pid):
        # Warm up both paths (connections, caches, the auth check) before measuring.
        asyncio.run(load(port, args.clients, args.warmup, health=True, first=0))
        asyncio.run(load(port, args.clients, args.warmup, health=False, first=10_000_000))
        # Alternate the two paths in short rounds, so that a change in the machine's load
        # (it is shared) weighs on both alike.
        health_rounds: list[LoadResult] = []
        bounce_rounds: list[LoadResult] = []
        step = args.seconds / args.rounds
        # The server's own CPU time per request does not depend on what else runs here.
        health_cpu = bounce_cpu = 0.0
        for round_number in range(args.rounds):
            first = round_number * 50_000_000
            before = cpu_seconds(pid)
            health_rounds.append(asyncio.run(load(port, args.clients, step, True, first)))
            middle = cpu_seconds(pid)
            bounce_rounds.append(asyncio.run(load(port, args.clients, step, False, first)))
            health_cpu += middle - before
            bounce_cpu += cpu_seconds(pid) - middle
        health, bounces = merge(health_rounds), merge(bounce_rounds)
    acked, once, total = check_stored(database_url, bounces.acked_ids)
    ratio = bounces.rate / health.rate if health.rate else float("nan")
    print(
        f"{label:<22} {bounces.rate:8.0f} ev/s  p50 {bounces.percentile(0.5):6.1f} ms  "
        f"p99 {bounces.percentile(0.99):6.1f} ms  failed {bounces.failed:5d}  | "
        f"/health {health.rate:6.0f} req/s (p99 {health.percentile(0.99):5.1f} ms)  "
        f"ratio {ratio:5.0%}  | stored once: {once}/{acked} acked ({total} rows)"
    )
    per_event = 1000 * bounce_cpu / max(bounces.ok, 1)
    per_health = 1000 * health_cpu / max(health.ok, 1)
    print(
        f"{'':<22} server CPU {per_event:.2f} ms per event ({1000 / per_event:,.0f} ev/s per "
        f"fully used core), {per_health:.2f} ms per /health; the server used "
        f"{bounce_cpu / bounces.seconds:.0%} of a core while ingesting"
    )
    if once != acked:
        print(f"  ERROR: {acked - once} acknowledged events are not stored exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--clients", type=int, default=48, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=1.5, help="warm-up per path")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the two paths")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (for --db postgresql)")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "all"), default="all", help="databases to run"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 0.5, 2
    if not (args.db == "postgresql" and args.database_url):
        print(
            f"ingest_http: {args.clients} keep-alive connections (one request in flight each); "
            f"{args.seconds:.0f} s per path in {args.rounds} alternating rounds after "
            f"{args.warmup:.1f} s warm-up; the load generator is one asyncio process on the same "
            f"{os.cpu_count()} cores as the server (load average now "
            f"{os.getloadavg()[0]:.1f})."
        )
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        if not (args.db == "postgresql" and args.database_url):
            calibrate(work, args)
        if args.db in ("sqlite", "all"):
            run_case("sqlite, 1 worker", f"sqlite:///{work / 'bench.db'}", 1, work, args)
        if args.db == "postgresql" and args.database_url:
            for workers in (1, 2):
                reset_schema(args.database_url)
                run_case(f"postgresql, {workers} worker(s)", args.database_url, workers, work, args)
        elif args.db in ("postgresql", "all"):
            run_beside_postgres(args)


def reset_schema(url: str) -> None:
    """Empties the database so that each case starts from the same state."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run_beside_postgres(args: argparse.Namespace) -> None:
    """Runs the PostgreSQL cases again inside scripts/with-postgres.sh (a throw-away server,
    loopback only, with fsync off as the test suite runs it)."""
    command = [
        str(REPO / "scripts" / "with-postgres.sh"),
        sys.executable,
        __file__,
        "--db",
        "postgresql",
        "--database-url",
        "$URL",
        "--clients",
        str(args.clients),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--rounds",
        str(args.rounds),
    ]
    sys.stdout.flush()
    done = subprocess.run(command, check=False)
    if done.returncode == 77:
        print("postgresql: binaries not found (scripts/setup.sh installs them); skipped")
    elif done.returncode != 0:
        raise SystemExit(f"postgresql cases failed (exit {done.returncode})")


if __name__ == "__main__":
    main()
