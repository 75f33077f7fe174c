"""Campaign sending capacity against the number of `stmails worker` processes on one PostgreSQL.

For each number of workers (`--workers`, default 1 and 2) it makes a new schema, migrates it,
puts N subscribers on one list with a plain-text campaign and the sending settings pointing at a
lean aiosmtpd sink (its own process; `--latency-ms` makes it answer each message that much
later, as a remote server does), starts that many real `stmails worker` processes, sets the
campaign running and times it until it is finished. It prints messages/s per run and checks
from the sink that every subscriber received exactly one message.

PostgreSQL only (several workers share a campaign through it):

    scripts/with-postgres.sh .venv/bin/python benchmarks/multi_worker.py --database-url '$URL'
    ... --subscribers 20000 --latency-ms 0 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.engine import make_url

from stmails.db.engine import make_engine, session_factory
from stmails.db.migrate import upgrade
from stmails.db.models import Campaign, CampaignList, MailingList, Subscriber, SubscriberList
from stmails.services import settings as settings_service
from stmails.services.sending.campaigns import change_status
from stmails.services.sending.config import SendingConfig


def _sink_main(port: int, latency: float, conn: Connection) -> None:
    """An aiosmtpd server that answers each message after `latency` seconds and remembers the
    recipients; reports them on request."""
    from aiosmtpd.controller import Controller

    received: list[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if latency:
                await asyncio.sleep(latency)
            received.extend(envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "count":
            conn.send(len(received))
        elif command == "report":
            conn.send(list(received))
        else:
            break
    controller.stop()


class Sink:
    """The sink's process and the pipe to ask it."""

    def __init__(self, latency: float) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(
            target=_sink_main, args=(self.port, latency, child), daemon=True
        )
        self.process.start()
        assert self.parent.recv() == "ready"

    def ask(self, command: str) -> Any:
        self.parent.send(command)
        return self.parent.recv()

    def stop(self) -> None:
        self.parent.send("stop")
        self.process.join(10)


def new_schema(url: str) -> tuple[str, str]:
    """A new schema in the database of `url`; (its name, a URL that works in it)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def populate(engine: Engine, subscribers: int, sink: Sink, connections: int, batch: int) -> int:
    """The list, its subscribers, the campaign and the sending settings; the campaign's id."""
    with session_factory(engine)() as session, session.begin():
        news = MailingList(name="Everyone", optin="single")
        session.add(news)
        session.flush()
        for start in range(0, subscribers, 20_000):
            session.execute(
                insert(Subscriber),
                [
                    {"email": f"r{i}@example.com", "name": f"R {i}", "status": "enabled"}
                    for i in range(start, min(subscribers, start + 20_000))
                ],
            )
        ids = list(session.scalars(select(Subscriber.id)))
        session.execute(
            insert(SubscriberList),
            [{"subscriber_id": i, "list_id": news.id, "status": "confirmed"} for i in ids],
        )
        campaign = Campaign(
            name="Capacity",
            subject="Hello {{ Subscriber.Name }}",
            body="Dear {{ Subscriber.Name }}, this is the news of the week.",
            content_type="plain",
            from_email="News <news@example.org>",
        )
        session.add(campaign)
        session.flush()
        session.add(CampaignList(campaign_id=campaign.id, list_id=news.id))
        values = {
            "smtp": [
                {
                    "enabled": True,
                    "host": "127.0.0.1",
                    "port": sink.port,
                    "auth_protocol": "none",
                    "tls_type": "none",
                    "max_conns": connections,
                }
            ],
            "app.root_url": "https://lists.example.org",
            "sending.bounce_address": "bounces@mail.example.org",
            "app.concurrency": connections,
            "app.batch_size": batch,
        }
        settings_service.update(session, values)
        return campaign.id


def run(url: str, workers: int, subscribers: int, latency: float, args: Any) -> float:
    """One measured run; returns messages/s."""
    schema, scoped = new_schema(url)
    engine = make_engine(scoped)
    sink = Sink(latency)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(engine)
        campaign_id = populate(engine, subscribers, sink, args.connections, args.batch_size)
        env = {key: value for key, value in os.environ.items() if not key.startswith("STMAILS_")}
        env.update(STMAILS_DATABASE_URL=scoped, STMAILS_SECRET_KEY="benchmark-secret-0123456789")
        for n in range(workers):
            workdir = Path(tempfile.mkdtemp(prefix=f"stmails-worker{n}-"))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "stmails", "worker", "--poll", "0.2"],
                    env={**env, "STMAILS_DATA_DIR": str(workdir)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # The workers are up (and idle) before the clock starts.
        time.sleep(3)
        with session_factory(engine)() as session, session.begin():
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            config = SendingConfig.from_settings(settings_service.get_all(session))
            change_status(session, campaign, "running", config)
        started = time.perf_counter()
        while True:
            with engine.connect() as connection:
                status = connection.scalar(
                    select(Campaign.status).where(Campaign.id == campaign_id)
                )
            if status == "finished":
                break
            if status != "running" or time.perf_counter() - started > args.timeout:
                raise SystemExit(f"the campaign is {status} after {args.timeout} s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        received = Counter(address.lower() for address in sink.ask("report"))
        if len(received) != subscribers or set(received.values()) != {1}:
            raise SystemExit(
                f"{len(received)} recipients, at most {max(received.values())} messages each"
            )
        return subscribers / elapsed
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        sink.stop()
        engine.dispose()
        admin = make_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STMAILS_TEST_DATABASE_URL", ""),
        help="A PostgreSQL database (schemas are made in it and dropped)",
    )
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, action="append", help="default: 1 and 2")
    parser.add_argument(
        "--latency-ms", type=float, action="append", help="the sink's delay per message"
    )
    parser.add_argument("--connections", type=int, default=4, help="per worker")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (see the module docstring)")
    counts = args.workers or [1, 2]
    latencies = args.latency_ms or [0.0]
    print(
        f"multi_worker: {args.subscribers:,} recipients, {args.connections} connections and "
        f"batches of {args.batch_size} per worker; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; sink and workers on this machine"
    )
    for latency in latencies:
        rates: dict[int, list[float]] = {n: [] for n in counts}
        for _ in range(args.rounds):
            for workers in counts:
                rate = run(args.database_url, workers, args.subscribers, latency / 1000, args)
                rates[workers].append(rate)
                print(
                    f"  sink latency {latency:g} ms, {workers} worker(s): {rate:,.0f} messages/s",
                    flush=True,
                )
        base = max(rates[counts[0]])
        for workers in counts:
            best = max(rates[workers])
            print(
                f"sink latency {latency:g} ms, {workers} worker(s): best {best:,.0f} messages/s "
                f"({best / base:.2f}x {counts[0]} worker(s)); every recipient received one"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
