"""Syntax-stage throughput through a real process: addresses per second over a pipe.

Feeds N generated realistic addresses (one per line) to
``stmails verify --offline --format jsonl -`` and times the whole process until it has written
one JSON record per line (process start-up included). For a baseline, the same pipe is timed
through a minimal process that runs email-validator (strict, no DNS) on each line and writes
one JSON record per line, and the ratio is printed.

It also measures ``POST /api/verify`` (offline stages) latency: the router mounted on a small
FastAPI app served by uvicorn (its own process) on loopback, 2,000 sequential requests from an
httpx client; p50/p99 of the full HTTP round trip and of the time inside the app (target: p99
under 5 ms).

Usage: python benchmarks/verify_syntax.py [--count N] [--quick] [--no-baseline] [--no-api]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STMAILS = REPO / ".venv" / "bin" / "stmails"
PYTHON = REPO / ".venv" / "bin" / "python"

FIRST = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "luis",
    "ana",
    "mohammed",
    "fatima",
    "wei",
    "li",
    "olga",
    "ivan",
    "sven",
    "ingrid",
    "yuki",
    "haruto",
    "chloe",
    "lucas",
    "emma",
    "noah",
    "mia",
    "leon",
    "anna",
    "pierre",
    "claire",
]
LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "mueller",
    "schmidt",
    "rossi",
    "dubois",
    "novak",
    "kowalski",
    "tanaka",
    "suzuki",
    "kim",
    "nguyen",
    "singh",
    "patel",
]
PROVIDERS = [
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "aol.com",
    "icloud.com",
    "live.com",
    "msn.com",
    "comcast.net",
    "gmx.de",
    "web.de",
    "orange.fr",
    "yahoo.co.uk",
    "mail.ru",
    "qq.com",
    "protonmail.com",
    "btinternet.com",
    "libero.it",
    "t-online.de",
    "naver.com",
]
TYPO_DOMAINS = ["gmial.com", "hotmial.com", "yaho.com", "outlok.com", "gmail.con", "gnail.com"]
DISPOSABLE = ["mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com"]
ROLES = ["info", "admin", "sales", "support", "contact", "office", "hello"]
WORDS = [
    "acme",
    "global",
    "tech",
    "data",
    "cloud",
    "north",
    "south",
    "blue",
    "green",
    "star",
    "river",
    "media",
    "group",
    "labs",
    "systems",
    "solutions",
    "partners",
    "digital",
    "studio",
    "works",
    "health",
    "energy",
    "capital",
    "design",
]
TLDS = ["com", "com", "com", "net", "org", "io", "co.uk", "de", "fr", "nl", "ca", "com.au"]
INVALID = (
    "john.smith@",
    "@example.com",
    "john..smith@example.com",
    "john smith@example.com",
    "john@example",
    "john@-example.com",
    '"john smith"@example.com',
    "john@example..com",
    "john.@example.com",
    "john@[192.0.2.1]",
    "jöhn@exämple.com",
    "user@xn--bcher-kva.example",
)


def company_domains(rng: random.Random, count: int) -> list[str]:
    """A pool of plausible corporate domains (a long tail, as in a real list)."""
    return [
        f"{rng.choice(WORDS)}{rng.choice(['', '-'])}{rng.choice(WORDS)}"
        f"{rng.choice(['', str(rng.randint(1, 99))])}.{rng.choice(TLDS)}"
        for _ in range(count)
    ]


def generate(count: int, seed: int = 6) -> list[str]:
    """``count`` realistic addresses: mostly valid, with typos, disposables, roles, junk."""
    rng = random.Random(seed)
    companies = company_domains(rng, max(100, count // 20))
    out: list[str] = []
    for _ in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = rng.choice(
            (
                f"{first}.{last}",
                f"{first}{last}",
                f"{first[0]}{last}",
                f"{first}_{last}{rng.randint(1, 99)}",
                f"{first}.{last}+news",
                f"{last}{rng.randint(1950, 2010)}",
            )
        )
        if rng.random() < 0.5:
            local = local.capitalize()
        roll = rng.random()
        if roll < 0.55:
            domain = rng.choice(PROVIDERS)
        elif roll < 0.90:
            domain = rng.choice(companies)
        elif roll < 0.93:
            domain = rng.choice(DISPOSABLE)
        elif roll < 0.95:
            domain = rng.choice(TYPO_DOMAINS)
        elif roll < 0.97:
            local = rng.choice(ROLES)
            domain = rng.choice(companies)
        else:
            out.append(rng.choice(INVALID))
            continue
        out.append(f"{local}@{domain}")
    return out


BASELINE_SCRIPT = r"""
import json, sys
from email_validator import validate_email, EmailNotValidError
out = []
for line in sys.stdin.buffer.read().decode("utf-8", "surrogateescape").split("\n")[:-1]:
    try:
        validate_email(line, check_deliverability=False, strict=True)
        out.append(json.dumps({"address": line, "syntax_valid": True}))
    except EmailNotValidError as exc:
        out.append(json.dumps({"address": line, "syntax_valid": False, "detail": str(exc)}))
sys.stdout.write("\n".join(out) + "\n")
"""


def run_pipe(command: list[str], data: bytes, expected_lines: int) -> float:
    """Seconds for ``command`` to read ``data`` on stdin and write ``expected_lines`` lines."""
    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as sink:
        source.write(data)
        source.seek(0)
        started = time.perf_counter()
        subprocess.run(command, stdin=source, stdout=sink, check=True)
        elapsed = time.perf_counter() - started
        sink.seek(0)
        lines = sink.read().count(b"\n")
    if lines != expected_lines:
        raise SystemExit(f"{command[0]} wrote {lines} lines for {expected_lines} inputs")
    return elapsed


def _percentiles(milliseconds: list[float]) -> tuple[float, float, float]:
    ordered = sorted(milliseconds)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)], ordered[-1]


# The API server: the router on a small FastAPI app, served by uvicorn in its own process. An
# ASGI wrapper reports the time spent inside the app (request in to response start) in a header.
SERVER_SCRIPT = r"""
import sys, time
from pathlib import Path
import uvicorn
from fastapi import FastAPI
from stmails.verify import OfflineVerifier, Verifier
from stmails.web.api.verify import create_verify_router

app = FastAPI()
app.include_router(
    create_verify_router(
        Path(sys.argv[2]), verifier_factory=lambda offline: Verifier(OfflineVerifier())
    )
)

async def timed(scope, receive, send):
    started = time.perf_counter()

    async def send_timed(message):
        if message["type"] == "http.response.start":
            spent = f"{(time.perf_counter() - started) * 1000:.4f}".encode()
            message["headers"] = [*message.get("headers", []), (b"x-app-ms", spent)]
        await send(message)

    await app(scope, receive, send_timed)

uvicorn.Server(
    uvicorn.Config(
        timed, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off"
    )
).run()
"""


def api_latency(
    addresses: list[str], requests: int
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """POST /api/verify (offline stages) latency in milliseconds, as (p50, p99, max) twice:
    the client's full HTTP round trip, and the time inside the app as the server reports it."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    round_trips: list[float] = []
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([str(PYTHON), "-c", SERVER_SCRIPT, str(port), data_dir])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(300):
                    try:
                        client.get("/")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                for index in range(requests + 200):
                    body = {"email": addresses[index % len(addresses)], "offline": True}
                    started = time.perf_counter()
                    response = client.post("/api/verify", json=body)
                    elapsed = time.perf_counter() - started
                    response.raise_for_status()
                    # The first 200 requests warm up the connection and the caches.
                    if index >= 200:
                        round_trips.append(elapsed * 1000)
                        inside.append(float(response.headers["x-app-ms"]))
        finally:
            server.terminate()
            server.wait(10)
    return _percentiles(round_trips), _percentiles(inside)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 addresses, one run")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-api", action="store_true", help="skip the API latency part")
    args = parser.parse_args()
    count = 20_000 if args.quick else args.count
    runs = 1 if args.quick else args.runs
    addresses = generate(count)
    data = ("\n".join(addresses) + "\n").encode("utf-8")
    command = [str(STMAILS), "verify", "--offline", "--format", "jsonl", "-"]

    best = min(run_pipe(command, data, count) for _ in range(runs))
    rate = count / best
    print(f"command : {' '.join(command)} < {count:,} generated addresses (seed 6)")
    print(f"stmails : {best:.3f} s best of {runs}, {rate:,.0f} addresses/s (start-up included)")

    # A sanity check that the records are real: count the verdicts of the last run.
    sample = subprocess.run(
        command, input=data[: data.index(b"\n", 200_000) + 1], capture_output=True, check=True
    ).stdout.decode()
    verdicts: dict[str, int] = {}
    for line in sample.splitlines():
        verdict = json.loads(line)["result"]
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    print(f"verdicts in the first 200 kB: {verdicts}")

    if not args.no_baseline:
        baseline_command = [str(PYTHON), "-c", BASELINE_SCRIPT]
        baseline = min(run_pipe(baseline_command, data, count) for _ in range(1))
        baseline_rate = count / baseline
        print(
            f"baseline: email-validator strict, same pipe: {baseline:.3f} s, "
            f"{baseline_rate:,.0f} addresses/s"
        )
        print(f"ratio   : {rate / baseline_rate:.1f}x email-validator")
    print(f"python  : {sys.version.split()[0]}; target >= 50,000 addresses/s")
    if not args.no_api:
        requests = 500 if args.quick else 2000
        trip, inside = api_latency(addresses, requests)
        print(
            f"api     : POST /api/verify (offline), uvicorn on loopback, {requests} requests; "
            "target p99 < 5 ms"
        )
        for name, (p50, p99, worst) in (("round trip", trip), ("in the app", inside)):
            print(f"          {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms")


if __name__ == "__main__":
    main()
