"""Campaign sending throughput with the suppression list enforced, against a plain smtplib loop.

Builds a SQLite database with N subscribers on one list and M suppression entries, of which 10%
are recipients of the campaign (the rest are other addresses), starts a lean aiosmtpd sink in
another process, then measures in the same run:

- baseline: the same messages (prebuilt, for the recipients that are not suppressed) sent by a
  plain smtplib loop over the same number of connections (one thread per connection);
- stmails: the campaign sender (claims in campaign_sends, subscription and suppression checks in
  batches, rendering, headers, SMTP pool), from start to finish.

It runs both several times (`--rounds`, alternating which goes first, each stmails round with a
campaign of its own) and prints messages/s for both, per round and over all rounds, the ratio
(target >= 0.80), and verifies from the sink that no suppressed address received anything and
every other recipient received exactly one message per round.

    .venv/bin/python benchmarks/send_campaign.py                      # 100,000 / 1,000,000
    .venv/bin/python benchmarks/send_campaign.py --subscribers 10000 --suppressions 100000
    .venv/bin/python benchmarks/send_campaign.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import smtplib
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import make_engine, session_factory
from stmails.db.models import (
    Base,
    Campaign,
    CampaignList,
    MailingList,
    Subscriber,
    SubscriberList,
    Suppression,
    Template,
)
from stmails.services import bounces
from stmails.services.sending.campaigns import (
    CampaignRunner,
    RunReport,
    change_status,
    compile_campaign,
    recipient_of,
    render_for,
)
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool

BODY = (
    "<p>Hello {{ .Subscriber.FirstName }},</p><p>News from {{ .Subscriber.Attribs.city }}: "
    "this month we shipped several improvements. Read more on "
    '<a href="https://example.org/news">our site</a>.</p>'
)
LAYOUT = (
    "<html><body><div class='c'>{{ template \"content\" . }}</div>"
    "<p><a href='{{ UnsubscribeURL }}'>Unsubscribe</a></p></body></html>"
)


# -- the sink (separate process) --------------------------------------------------------------


def _sink_main(port: int, conn: Connection) -> None:
    """A lean aiosmtpd server: counts messages and remembers recipients; reports on request."""
    from aiosmtpd.controller import Controller

    received: list[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.extend(envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "reset":
            received.clear()
            conn.send("ok")
        elif command == "report":
            conn.send(list(received))
        elif command == "cpu":
            times = os.times()
            conn.send(times.user + times.system)
        else:
            break
    controller.stop()


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_sink_main, args=(port, child), daemon=True)
        self.process.start()
        assert self.parent.recv() == "ready"

    def reset(self) -> None:
        self.parent.send("reset")
        self.parent.recv()

    def report(self) -> list[str]:
        self.parent.send("report")
        result: list[str] = self.parent.recv()
        return result

    def cpu(self) -> float:
        """CPU seconds the sink process has used so far (user + system, all its threads)."""
        self.parent.send("cpu")
        seconds: float = self.parent.recv()
        return seconds

    def stop(self) -> None:
        self.parent.send("stop")
        self.process.join(10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the data ---------------------------------------------------------------------------------


def populate(
    factory: sessionmaker[Session], subscribers: int, suppressions: int, campaigns: int = 1
) -> set[str]:
    """Subscribers on one list, `campaigns` identical campaigns to it (one per round), and the
    suppression entries; returns the suppressed recipients."""
    suppressed_recipients = {f"user{i}@example.com" for i in range(0, subscribers, 10)}
    with factory() as session, session.begin():
        news = MailingList(name="News", optin="single")
        session.add(news)
        session.add(Template(name="Default", type="campaign", is_default=True, body=LAYOUT))
        session.flush()
        list_id = news.id
        chunk = 20_000
        for start in range(0, subscribers, chunk):
            rows = [
                {
                    "id": i + 1,
                    "uuid": _uuid(i),
                    "email": f"user{i}@example.com",
                    "name": f"User{i} Example",
                    "attribs": {"city": "Paris"},
                    "status": "enabled",
                }
                for i in range(start, min(subscribers, start + chunk))
            ]
            session.execute(insert(Subscriber), rows)
            session.execute(
                insert(SubscriberList),
                [
                    {"subscriber_id": r["id"], "list_id": list_id, "status": "confirmed"}
                    for r in rows
                ],
            )
        addresses = sorted(suppressed_recipients)
        extra = max(0, suppressions - len(addresses))
        for start in range(0, len(addresses) + extra, 50_000):
            rows = []
            for n in range(start, min(len(addresses) + extra, start + 50_000)):
                email = addresses[n] if n < len(addresses) else f"other{n}@elsewhere.example"
                rows.append(
                    {
                        "email": email,
                        "email_hash": hashlib.sha256(email.encode()).hexdigest(),
                        "scope": "global",
                        "list_id": 0,
                        "reason": "hard_bounce" if n % 2 else "unsubscribe",
                        "source": "benchmark",
                    }
                )
            session.execute(insert(Suppression), rows)
        for number in range(1, campaigns + 1):
            campaign = Campaign(
                name=f"Benchmark {number}",
                subject="News for {{ .Subscriber.Name }}",
                from_email="News <news@sender.example>",
                body=BODY,
                content_type="html",
            )
            session.add(campaign)
            session.flush()
            session.add(CampaignList(campaign_id=campaign.id, list_id=list_id, list_name="News"))
    return suppressed_recipients


def _uuid(i: int) -> str:
    digest = hashlib.md5(str(i).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


# -- the two senders --------------------------------------------------------------------------


def baseline(port: int, messages: Sequence[tuple[str, str, bytes]], connections: int) -> float:
    """Seconds a plain smtplib loop takes to send `messages` over `connections` connections."""
    shares = [messages[i::connections] for i in range(connections)]

    def work(share: Sequence[tuple[str, str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for sender, rcpt, data in share:
                client.sendmail(sender, [rcpt], data)

    threads = [threading.Thread(target=work, args=(s,)) for s in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def prebuilt_messages(
    factory: sessionmaker[Session], config: SendingConfig, skip: set[str]
) -> list[tuple[str, str, bytes]]:
    """The campaign's messages, built by stmails' own renderer, for the baseline to send."""
    from sqlalchemy import select

    with factory() as session:
        campaign = session.scalar(select(Campaign).order_by(Campaign.id).limit(1))
        assert campaign is not None
        content = compile_campaign(session, campaign, config)
        out = []
        for subscriber in session.scalars(select(Subscriber).order_by(Subscriber.id)):
            if subscriber.email in skip:
                continue
            message = render_for(
                content,
                campaign,
                recipient_of(subscriber),
                config,
                return_path_for(config, None),
            )
            out.append((message.envelope_from, message.recipient, message.data))
        session.expunge_all()
    return out


def run_stmails(
    factory: sessionmaker[Session], config: SendingConfig, number: int
) -> tuple[float, RunReport]:
    """Seconds the sender takes to send campaign `number` from start to finish, and its
    report (sent, send errors, released claims)."""
    from sqlalchemy import select

    with factory() as session, session.begin():
        campaign = session.scalar(select(Campaign).where(Campaign.name == f"Benchmark {number}"))
        assert campaign is not None
        change_status(session, campaign, "running", config)
        campaign_id = campaign.id
    pool = SmtpPool(config.smtp)
    runner = CampaignRunner(factory, pool, config, bounces.record, return_path_for(config, None))
    started = time.perf_counter()
    report = runner.run(campaign_id)
    elapsed = time.perf_counter() - started
    pool.close()
    assert report.finished, report
    return elapsed, report


@dataclass
class Round:
    """One round: the baseline and stmails, each timed with its CPU use."""

    base_count: int = 0
    base_seconds: float = 0.0
    base_cpu: float = 0.0
    base_sink_cpu: float = 0.0
    ours_count: int = 0
    ours_seconds: float = 0.0
    ours_cpu: float = 0.0
    ours_sink_cpu: float = 0.0
    sent: int = 0
    errors: int = 0
    leaked: int = 0
    duplicates: int = 0
    missing: int = 0

    @property
    def ratio(self) -> float:
        return (self.ours_count / self.ours_seconds) / (self.base_count / self.base_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--suppressions", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="baseline and stmails this many times, alternating which goes first (default 3)",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 subscribers, 100,000 entries")
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.suppressions = 10_000, 100_000
    rounds = [Round() for _ in range(max(1, args.rounds))]

    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as folder:
        db = Path(folder) / "bench.db"
        engine = make_engine(f"sqlite:///{db}")
        Base.metadata.create_all(engine)
        factory = session_factory(engine)
        t0 = time.perf_counter()
        suppressed = populate(factory, args.subscribers, args.suppressions, len(rounds))
        setup = time.perf_counter() - t0
        expected = args.subscribers - len(suppressed)
        port = free_port()
        sink = Sink(port)
        server = {
            "host": "127.0.0.1",
            "port": port,
            "auth_protocol": "none",
            "tls_type": "none",
            "max_conns": args.connections,
            "max_msg_retries": 1,
        }
        config = SendingConfig.from_settings(
            {
                "smtp": [server],
                "sending.bounce_address": "bounces@mail.example.org",
                "app.concurrency": args.connections,
                "app.batch_size": args.batch_size,
                "app.root_url": "https://lists.example.org",
            }
        )
        try:
            messages = prebuilt_messages(factory, config, suppressed)
            for number, result in enumerate(rounds, start=1):
                # Alternate the order, so that a drift in the machine's speed favours neither.
                for side in ("base", "ours") if number % 2 else ("ours", "base"):
                    sink.reset()
                    sink_cpu, cpu = sink.cpu(), time.process_time()
                    if side == "base":
                        result.base_seconds = baseline(port, messages, args.connections)
                        result.base_cpu = time.process_time() - cpu
                        result.base_sink_cpu = sink.cpu() - sink_cpu
                        result.base_count = len(sink.report())
                        continue
                    result.ours_seconds, report = run_stmails(factory, config, number)
                    result.sent, result.errors = report.sent, report.errors
                    result.ours_cpu = time.process_time() - cpu
                    result.ours_sink_cpu = sink.cpu() - sink_cpu
                    delivered = sink.report()
                    result.ours_count = len(delivered)
                    result.leaked = len(suppressed.intersection(delivered))
                    result.duplicates = len(delivered) - len(set(delivered))
                    result.missing = expected - len(set(delivered))
        finally:
            sink.stop()
            engine.dispose()

    def per_message(seconds: float, count: int) -> str:
        return f"{seconds / max(count, 1) * 1e6:,.0f}"

    print("send_campaign benchmark")
    print(
        f"  how: SQLite (WAL) in a temp dir, {args.subscribers:,} subscribers, "
        f"{args.suppressions:,} suppression entries ({len(suppressed):,} of them recipients), "
        f"{args.connections} SMTP connections to a lean aiosmtpd sink in another process, "
        f"batch {args.batch_size}, {len(rounds)} rounds alternating which side goes first, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"  setup (data load): {setup:.1f} s; load average (1 min): {os.getloadavg()[0]:.1f}")
    for number, r in enumerate(rounds, start=1):
        print(
            f"  round {number}: baseline {r.base_count:,} in {r.base_seconds:.2f} s "
            f"= {r.base_count / r.base_seconds:,.0f} msg/s; stmails {r.ours_count:,} in "
            f"{r.ours_seconds:.2f} s = {r.ours_count / r.ours_seconds:,.0f} msg/s "
            f"(sender reported {r.sent:,}, send errors {r.errors}); ratio {r.ratio:.2f}; "
            "CPU per message (sender / sink) "
            f"baseline {per_message(r.base_cpu, r.base_count)} / "
            f"{per_message(r.base_sink_cpu, r.base_count)} µs, "
            f"stmails {per_message(r.ours_cpu, r.ours_count)} / "
            f"{per_message(r.ours_sink_cpu, r.ours_count)} µs"
        )
    base_rate = sum(r.base_count for r in rounds) / sum(r.base_seconds for r in rounds)
    our_rate = sum(r.ours_count for r in rounds) / sum(r.ours_seconds for r in rounds)
    print(f"  baseline smtplib loop, all rounds: {base_rate:,.0f} msg/s")
    print(f"  stmails campaign, all rounds:      {our_rate:,.0f} msg/s")
    print(
        f"  ratio stmails/baseline: {our_rate / base_rate:.2f} over all rounds, per round "
        f"{', '.join(f'{r.ratio:.2f}' for r in rounds)} (target >= 0.80)"
    )
    leaked = sum(r.leaked for r in rounds)
    duplicates = sum(r.duplicates for r in rounds)
    missing = sum(r.missing for r in rounds)
    print(f"  suppressed addresses delivered: {leaked} (target 0)")
    print(
        f"  duplicates: {duplicates}; missing: {missing} "
        f"(each round expects {expected:,} distinct recipients)"
    )
    return 0 if not (leaked or duplicates or missing) else 1


if __name__ == "__main__":
    sys.exit(main())
