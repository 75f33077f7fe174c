"""SES notifications/s through `POST /webhooks/service/ses` on the real server, signatures verified.

Starts `stmails serve` (SQLite, 1 worker) with SES enabled, a TopicArn allowlist and a signing
certificate of our own trusted through `bounce.ses.signing_cert_pem` (so no certificate is
fetched), then drives it from concurrent keep-alive connections with distinct SNS messages
signed with SignatureVersion 2 (RSA-2048 / SHA-256), one bounced recipient each. Prints
acknowledged notifications/s, p50/p99 latency, the same server's `/health` rate as the baseline
ratio, and the in-process verify+parse rate of the adapter alone. Afterwards every acknowledged
notification must be stored exactly once.

    .venv/bin/python benchmarks/ingest_webhooks.py            # full run
    .venv/bin/python benchmarks/ingest_webhooks.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from sqlalchemy import create_engine, text

from stmails.config import Settings
from stmails.db.engine import session_factory
from stmails.db.migrate import open_database
from stmails.ingest.webhooks import WebhookRequest
from stmails.ingest.webhooks.ses import SesProvider
from stmails.services import settings as settings_service

REPO = Path(__file__).resolve().parent.parent


def helpers() -> tuple[ModuleType, ModuleType]:
    """The HTTP benchmark's server runner and the tests' SNS signer."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    sys.path.insert(0, str(REPO / "tests"))
    return importlib.import_module("ingest_http"), importlib.import_module(
        "ingest.webhooks.signing"
    )


def loop_cpu_seconds(pid: int) -> float:
    """CPU time used so far by the main thread of `pid`, where uvicorn runs the event loop."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state, ppid, ..., utime (12th) and stime (13th).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def notification(number: int, kind: str) -> dict[str, object]:
    rcpt = f"user{number}@dest.example"
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": rcpt,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected",
                }
            ],
            "timestamp": "2026-01-27T14:59:38.237Z",
            "feedbackId": f"0000013811{number:08d}-bench-000000",
        },
        "mail": {"timestamp": "2026-01-27T14:59:38.237Z", "messageId": f"m{number}"},
    }


def requests(signing: ModuleType, count: int, kind: str, start: int = 0) -> list[bytes]:
    out = []
    for number in range(start, start + count):
        body = json.dumps(
            signing.sns_message(notification(number, kind), message_id=f"sns-{number}")
        ).encode()
        out.append(
            b"POST /webhooks/service/ses HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: text/plain; charset=UTF-8\r\nx-amz-sns-message-type: Notification\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def drive(
    http: ModuleType, port: int, clients: int, batch: list[bytes]
) -> tuple[int, int, float, list[float]]:
    """Sends every request of `batch` once over `clients` connections (`http`: ingest_http)."""
    queue = list(reversed(batch))
    ok = failed = 0
    latencies: list[float] = []

    async def client() -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                head = await http.exchange(reader, writer, request)
                latencies.append((time.perf_counter() - started) * 1000)
                if head.startswith(b"HTTP/1.1 200"):
                    ok += 1
                else:
                    failed += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ok, failed, time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--notifications", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--bounce-type", default="Permanent", choices=("Permanent", "Transient", "Undetermined")
    )
    args = parser.parse_args()
    count = 1000 if args.quick else args.notifications
    http, signing = helpers()
    cert_pem = signing.sns_signer().cert_pem
    started = time.perf_counter()
    batch = requests(signing, count, args.bounce_type)
    warmup = requests(signing, 200, args.bounce_type, start=count)
    sign_seconds = time.perf_counter() - started

    # The adapter alone, in this process: signature verification and parsing, no HTTP, no DB.
    provider = SesProvider()
    config = {"topic_arns": [signing.TOPIC_ARN], "signing_cert_pem": cert_pem}
    bodies = [request.split(b"\r\n\r\n", 1)[1] for request in batch[:1000]]
    started = time.perf_counter()
    for body in bodies:
        provider.handle(WebhookRequest(body=body), config)
    adapter_rate = len(bodies) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        engine = open_database(Settings(database_url=url, data_dir=work))
        with session_factory(engine)() as session:
            settings_service.set_value(session, "bounce.ses_enabled", True)
            settings_service.set_value(
                session,
                "bounce.ses",
                {"topic_arns": [signing.TOPIC_ARN], "signing_cert_pem": cert_pem},
            )
            session.commit()
        engine.dispose()
        with http.server(url, 1, work) as started:
            # ingest_http.server() yields the port (or the port and the server's pid).
            port = started[0] if isinstance(started, tuple) else started
            # Warm-up: distinct notifications that are not counted (numbered after the batch).
            asyncio.run(drive(http, port, args.clients, warmup))
            health = asyncio.run(http.load(port, args.clients, 3.0, health=True, first=0))
            pid = started[1] if isinstance(started, tuple) else None
            cpu_before = http.cpu_seconds(pid) if pid else 0.0
            loop_before = loop_cpu_seconds(pid) if pid else 0.0
            ok, failed, seconds, latencies = asyncio.run(drive(http, port, args.clients, batch))
            server_cpu = http.cpu_seconds(pid) - cpu_before if pid else float("nan")
            loop_cpu = loop_cpu_seconds(pid) - loop_before if pid else float("nan")
        check = create_engine(url)
        with check.connect() as connection:
            stored = connection.execute(
                text("SELECT COUNT(*), COUNT(DISTINCT dedup_key) FROM bounces WHERE source='ses'")
            ).one()
        check.dispose()
    latencies.sort()
    rate = ok / seconds if seconds else 0.0
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
    print(
        f"ingest_webhooks: stmails serve (SQLite, 1 worker) on loopback, {args.clients} keep-alive "
        f"connections, {count} distinct SES {args.bounce_type} notifications signed with "
        f"SignatureVersion 2 (signed beforehand in {sign_seconds:.1f} s); {os.cpu_count()} cores "
        "shared with the load generator"
    )
    print(
        f"POST /webhooks/service/ses: {rate:,.0f} notifications/s, p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, failed {failed}"
    )
    # The server's own CPU time per notification does not depend on what else runs here.
    print(
        f"server CPU {1000 * server_cpu / max(ok, 1):.2f} ms per notification (event loop thread "
        f"{1000 * loop_cpu / max(ok, 1):.2f}: HTTP, route, verify + parse; other threads "
        f"{1000 * (server_cpu - loop_cpu) / max(ok, 1):.2f}: mostly the bounce writer's "
        f"commits); the server used {server_cpu / seconds:.0%} of a core"
    )
    ratio = rate / health.rate if health.rate else float("nan")
    print(f"baseline GET /health: {health.rate:,.0f} req/s; ratio {ratio:.0%}")
    print(f"adapter alone (verify + parse, in process): {adapter_rate:,.0f} notifications/s")
    print(f"stored {stored[0]} rows, {stored[1]} distinct; acknowledged {ok}")
    print(f"target >= 1,000 notifications/s: {'met' if rate >= 1000 else 'NOT met'}")
    # Warm-up notifications are stored too (200 of them).
    if stored[1] != ok + len(warmup) or stored[0] != stored[1]:
        print("ERROR: acknowledged notifications are not stored exactly once")
        sys.exit(1)


if __name__ == "__main__":
    main()
