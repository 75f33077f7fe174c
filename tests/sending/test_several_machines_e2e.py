"""Several machines on one PostgreSQL (issue 12), end to end: two `stmails serve` and two
`stmails worker` processes share a database; a 20,000-recipient campaign goes to aiosmtpd (over
STARTTLS with AUTH) while one worker is killed with SIGKILL; every recipient gets exactly one
message or is reported in doubt, webhook events posted to both servers at once are stored once,
a settings change saved through one server reaches the surviving worker mid-campaign, and the
first host's /metrics sums what its server and both workers counted. PostgreSQL only
(SQLite is one host's database): skipped without it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from running_server import API_TOKEN, API_USER, Server, environment, stmails_serve
from stmails.db.engine import make_engine, session_factory
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignList,
    CampaignSend,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.services import settings as settings_service
from stmails.services.sending.campaigns import IN_DOUBT, IN_FLIGHT

from .conftest import MakeServer

pytestmark = pytest.mark.integration

RECIPIENTS = 20_000
KILL_AFTER = 6_000
WEBHOOK_EVENTS = 40
STMAILS = [sys.executable, "-m", "stmails"]
AUTH = (API_USER, API_TOKEN)
METRICS_TOKEN = "e2e-metrics-token-0123456789"
NEW_BOUNCE_ADDRESS = "returns@mail.example.org"


@contextmanager
def stmails_worker(
    env: dict[str, str], workdir: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`stmails worker` in `workdir` until the block ends (SIGTERM, then SIGKILL)."""
    workdir.mkdir(exist_ok=True)
    with (workdir / f"{name}.out").open("wb") as out:
        process = subprocess.Popen(
            [*STMAILS, "worker", "--poll", "0.5"],
            env={**env, "STMAILS_DATA_DIR": str(workdir)},
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def populate(url: str, smtp: list[dict[str, object]]) -> int:
    """20,000 confirmed subscribers on one list, a plain-text campaign to it and the sending
    settings; returns the campaign's id."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            news = MailingList(name="Everyone", optin="single")
            session.add(news)
            session.flush()
            session.execute(
                insert(Subscriber),
                [
                    {"email": f"r{i}@example.com", "name": f"R {i}", "status": "enabled"}
                    for i in range(RECIPIENTS)
                ],
            )
            ids = list(session.scalars(select(Subscriber.id)))
            session.execute(
                insert(SubscriberList),
                [{"subscriber_id": i, "list_id": news.id, "status": "confirmed"} for i in ids],
            )
            campaign = Campaign(
                name="Big",
                subject="Hello {{ Subscriber.Name }}",
                body="Dear {{ Subscriber.Name }}, this is the news.",
                content_type="plain",
                from_email="News <news@example.org>",
            )
            session.add(campaign)
            session.flush()
            session.add(CampaignList(campaign_id=campaign.id, list_id=news.id))
            settings_service.update(
                session,
                {
                    "smtp": smtp,
                    "app.root_url": "https://lists.example.org",
                    "sending.bounce_address": "bounces@mail.example.org",
                    "app.concurrency": 4,
                    "app.batch_size": 500,
                },
            )
            return campaign.id
    finally:
        engine.dispose()


def post_to_both(servers: list[Server]) -> list[list[bool]]:
    """Posts each webhook event to both servers at the same moment; their `duplicate` answers."""
    answers = []
    with httpx.Client(timeout=30, auth=AUTH) as client, ThreadPoolExecutor(2) as pool:
        for n in range(WEBHOOK_EVENTS):
            body = {
                "email": f"outsider{n}@example.net",
                "source": "mta-log",
                "type": "soft",
                "reason": "mailboxfull",
                "event_id": f"both-{n}",
            }
            barrier = threading.Barrier(2)

            def post(
                server: Server, event: dict[str, str] = body, together: threading.Barrier = barrier
            ) -> httpx.Response:
                together.wait(10)
                return client.post(server.url + "/webhooks/bounce", json=event)

            results = list(pool.map(post, servers))
            assert all(r.status_code == 200 for r in results), [r.text for r in results]
            answers.append(sorted(bool(r.json()["duplicate"]) for r in results))
    return answers


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_two_servers_and_two_workers_on_one_postgresql(
    db_url: str,
    fresh_database_url: Callable[[], str],
    smtp_server: MakeServer,
    tmp_path: Path,
) -> None:
    if make_url(db_url).get_backend_name() != "postgresql":
        pytest.skip("several machines share a PostgreSQL database (STMAILS_TEST_DATABASE_URL)")
    url = fresh_database_url()
    sink = smtp_server(tls="starttls", auth=True)
    metrics_dir = tmp_path / "metrics"
    env = environment(
        STMAILS_DATABASE_URL=url,
        STMAILS_API_USER=API_USER,
        STMAILS_API_TOKEN=API_TOKEN,
        STMAILS_ADMIN_PASSWORD="e2e-admin-password",
        STMAILS_SECRET_KEY="one-secret-for-every-process-0123456789",
        STMAILS_SEND_CLAIM_TIMEOUT="10",
        STMAILS_METRICS_TOKEN=METRICS_TOKEN,
        STMAILS_LOG_FORMAT="json",
    )
    with ExitStack() as stack:
        servers = []
        for n in (1, 2):
            workdir = tmp_path / f"serve{n}"
            workdir.mkdir()
            server_env = {**env, "STMAILS_DATA_DIR": str(workdir)}
            if n == 1:
                # Host 1: its server and both workers share a metrics directory.
                server_env["STMAILS_METRICS_DIR"] = str(metrics_dir)
            servers.append(
                stack.enter_context(
                    stmails_serve(STMAILS, server_env, workdir, extra_args=["--no-sender"])
                )
            )
        campaign_id = populate(url, sink.smtp_settings(max_conns=4))
        worker_env = {**env, "STMAILS_METRICS_DIR": str(metrics_dir)}
        first = stack.enter_context(stmails_worker(worker_env, tmp_path / "worker1", "worker1"))
        second = stack.enter_context(stmails_worker(worker_env, tmp_path / "worker2", "worker2"))
        started = httpx.put(
            f"{servers[1].url}/api/campaigns/{campaign_id}/status",
            json={"status": "running"},
            auth=AUTH,
            timeout=30,
        )
        assert started.status_code == 200, started.text
        began = time.monotonic()
        answers = post_to_both(servers)
        wait_for(lambda: len(sink.handler.messages) >= KILL_AFTER, 120, "the first messages")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = len(sink.handler.messages)
        # An admin changes the bounce address through the first server: the surviving worker
        # (another process) sends the rest of the campaign with it.
        changed = httpx.put(
            f"{servers[0].url}/api/settings/sending.bounce_address",
            json=NEW_BOUNCE_ADDRESS,
            auth=AUTH,
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        changed_at = len(sink.handler.messages)
        engine = make_engine(url)
        stack.callback(engine.dispose)

        def status() -> str:
            with engine.connect() as connection:
                return str(
                    connection.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
                )

        wait_for(lambda: status() == "finished", 150, "the campaign to finish")
        elapsed = time.monotonic() - began
        assert second.poll() is None, "the surviving worker stopped"
        scraped = httpx.get(
            servers[0].url + "/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=30,
        )
        assert scraped.status_code == 200, scraped.text

    assert first.returncode == -signal.SIGKILL
    assert killed_at < RECIPIENTS, "the worker was killed after the campaign ended"
    # Webhooks: each event stored once, whichever server answered first.
    assert answers == [[False, True]] * WEBHOOK_EVENTS
    try:
        with engine.connect() as connection:
            stored = connection.scalar(
                select(func.count()).select_from(Bounce).where(Bounce.email.like("outsider%"))
            )
            rows = connection.execute(
                select(Subscriber.email, CampaignSend.status, CampaignSend.reason)
                .join(CampaignSend, CampaignSend.subscriber_id == Subscriber.id)
                .where(CampaignSend.campaign_id == campaign_id)
            ).all()
    finally:
        engine.dispose()
    assert stored == WEBHOOK_EVENTS
    received = Counter(address.lower() for address in sink.handler.recipients())
    # Nobody got two messages, and every recipient has exactly one row.
    assert max(received.values()) == 1
    assert len(rows) == RECIPIENTS == len({r.email for r in rows})
    by_reason = Counter(r.reason for r in rows)
    assert by_reason[IN_FLIGHT] == 0
    for email, state, reason in rows:
        if reason == IN_DOUBT:
            continue
        # Recorded as sent: the server has it, once.
        assert (state, reason, received[email]) == ("sent", "", 1), (email, state, reason)
    doubt = by_reason[IN_DOUBT]
    assert (
        len(received)
        + sum(1 for email, _, reason in rows if reason == IN_DOUBT and not received[email])
        == RECIPIENTS
    )
    # The in-doubt sends are the killed worker's last batches at most (two of 500 each).
    assert doubt <= 1_000
    # The settings change reached the worker mid-campaign, without a restart.
    senders = [m.mail_from for m in sink.handler.messages]
    assert set(senders[:changed_at]) == {"bounces@mail.example.org"}
    assert senders[-1] == NEW_BOUNCE_ADDRESS
    assert senders.index(NEW_BOUNCE_ADDRESS) < len(senders) - 1_000
    # Host 1's /metrics sums its server and both workers (the killed one's counts stay): every
    # message the sink took was counted as sent by the worker that sent it, save the killed
    # worker's last answers, which it had no time to count; server 1 saw each webhook event.
    figures = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    server = f"{sink.host}:{sink.port}"
    sent = figures[("stmails_smtp_messages_total", (("outcome", "sent"), ("server", server)))]
    assert len(received) - doubt <= sent <= len(received)
    ingested = [
        figures.get(("stmails_events_ingested_total", (("outcome", o), ("source", "mta-log"))), 0)
        for o in ("stored", "duplicate")
    ]
    assert sum(ingested) == WEBHOOK_EVENTS
    print(f"20,000 recipients: {len(received)} received, {doubt} in doubt, {elapsed:.1f} s")
