"""Campaign sending throughput with the suppression list enforced, against a plain smtplib loop.

Builds a SQLite database with N subscribers on one list and M suppression entries, of which 10%
are recipients of the campaign (the rest are other addresses), starts a lean aiosmtpd sink in
another process, then measures in the same run:

- baseline: the same messages (prebuilt, for the recipients that are not suppressed) sent by a
  plain smtplib loop over the same number of connections (one thread per connection);
- stmails: the campaign sender (claims in campaign_sends, subscription and suppression checks in
  batches, rendering, headers, SMTP pool), from start to finish.

It prints messages/s for both, the ratio (target >= 0.80), and verifies from the sink that no
suppressed address received anything and every other recipient received exactly one message.

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
    change_status,
    compile_campaign,
    recipient_of,
    render_for,
)
from stmails.services.sending.config import SendingConfig
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


def populate(factory: sessionmaker[Session], subscribers: int, suppressions: int) -> set[str]:
    """Subscribers on one list, a campaign to it, and the suppression entries; returns the
    suppressed recipients."""
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
        campaign = Campaign(
            name="Benchmark",
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
        campaign = session.scalar(select(Campaign))
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
                lambda c, s: config.bounce_address,
            )
            out.append((message.envelope_from, message.recipient, message.data))
        session.expunge_all()
    return out


def run_stmails(factory: sessionmaker[Session], config: SendingConfig) -> tuple[float, int]:
    """Seconds the campaign sender takes from start to finish, and how many it sent."""
    from sqlalchemy import select

    with factory() as session, session.begin():
        campaign = session.scalar(select(Campaign))
        assert campaign is not None
        change_status(session, campaign, "running", config)
        campaign_id = campaign.id
    pool = SmtpPool(config.smtp)
    runner = CampaignRunner(
        factory, pool.send, config, bounces.record, lambda c, s: config.bounce_address
    )
    started = time.perf_counter()
    report = runner.run(campaign_id)
    elapsed = time.perf_counter() - started
    pool.close()
    assert report.finished, report
    return elapsed, report.sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--suppressions", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="10,000 subscribers, 100,000 entries")
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.suppressions = 10_000, 100_000

    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as folder:
        db = Path(folder) / "bench.db"
        engine = make_engine(f"sqlite:///{db}")
        Base.metadata.create_all(engine)
        factory = session_factory(engine)
        t0 = time.perf_counter()
        suppressed = populate(factory, args.subscribers, args.suppressions)
        setup = time.perf_counter() - t0
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
            sink_cpu, cpu = sink.cpu(), time.process_time()
            base_seconds = baseline(port, messages, args.connections)
            base_cpu, base_sink_cpu = time.process_time() - cpu, sink.cpu() - sink_cpu
            base_count = len(sink.report())
            sink.reset()
            del messages
            sink_cpu, cpu = sink.cpu(), time.process_time()
            ours_seconds, sent = run_stmails(factory, config)
            ours_cpu, ours_sink_cpu = time.process_time() - cpu, sink.cpu() - sink_cpu
            delivered = sink.report()
        finally:
            sink.stop()
            engine.dispose()

    expected = args.subscribers - len(suppressed)
    leaked = suppressed.intersection(delivered)
    duplicates = len(delivered) - len(set(delivered))
    base_rate = base_count / base_seconds
    our_rate = len(delivered) / ours_seconds
    print("send_campaign benchmark")
    print(
        f"  how: SQLite (WAL) in a temp dir, {args.subscribers:,} subscribers, "
        f"{args.suppressions:,} suppression entries ({len(suppressed):,} of them recipients), "
        f"{args.connections} SMTP connections to a lean aiosmtpd sink in another process, "
        f"batch {args.batch_size}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"  setup (data load): {setup:.1f} s; load average (1 min): {os.getloadavg()[0]:.1f}")
    print(
        f"  baseline smtplib loop: {base_count:,} messages in {base_seconds:.2f} s "
        f"= {base_rate:,.0f} msg/s"
    )
    print(
        f"  stmails campaign:      {len(delivered):,} messages in {ours_seconds:.2f} s "
        f"= {our_rate:,.0f} msg/s (sender reported {sent:,})"
    )
    print(
        "  CPU per message (sender process, all threads / sink process): "
        f"baseline {base_cpu / max(base_count, 1) * 1e6:,.0f} / "
        f"{base_sink_cpu / max(base_count, 1) * 1e6:,.0f} µs, "
        f"stmails {ours_cpu / max(len(delivered), 1) * 1e6:,.0f} / "
        f"{ours_sink_cpu / max(len(delivered), 1) * 1e6:,.0f} µs"
    )
    print(f"  ratio stmails/baseline: {our_rate / base_rate:.2f} (target >= 0.80)")
    print(f"  suppressed addresses delivered: {len(leaked)} (target 0)")
    print(f"  duplicates: {duplicates}; delivered {len(set(delivered)):,} of {expected:,} expected")
    ok = not leaked and not duplicates and len(set(delivered)) == expected
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
