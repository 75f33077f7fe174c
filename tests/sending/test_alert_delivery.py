"""Alert delivery from the outbox: signed POSTs to a real HTTP receiver on loopback (retried
with backoff), an unreachable URL given up after its tries, emails through a real SMTP server
(aiosmtpd) on the transactional path, and claims that keep two workers apart."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Alert, AlertDelivery
from stmails.db.types import utcnow
from stmails.services import settings
from stmails.services.alerts import delivery
from stmails.services.alerts.delivery import Deliverer, claim_due
from stmails.services.alerts.store import raise_alert
from stmails.services.alerts.watch import alert_config_of
from stmails.workers.alerts import AlertEmails, AlertWorker

from .conftest import Sink, free_port

SECRET = "receiver-shared-secret-0123"


@dataclass
class Receiver:
    """A real HTTP server that records each POST and answers with the next planned status."""

    url: str
    plan: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hooks/alerts", [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.plan.pop(0) if state.plan else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def an_alert(factory: sessionmaker[Session], message: str = "bounce rate 5.3 %") -> int:
    with factory() as session, session.begin():
        alert = raise_alert(
            session,
            alert_config_of(session),
            "critical",
            "bounce_rate",
            message,
            {"bounce_rate": 5.3, "sends": 1000},
        )
        return int(alert.id)


def deliveries(factory: sessionmaker[Session]) -> list[AlertDelivery]:
    with factory() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_signed_post_retried_until_accepted(
    session_maker: sessionmaker[Session], receiver: Receiver
) -> None:
    with session_maker() as session, session.begin():
        settings.set_value(
            session,
            "deliverability.alert_webhooks",
            [{"url": receiver.url, "secret": SECRET}],
        )
    alert_id = an_alert(session_maker)
    receiver.plan = [500]
    worker = Deliverer(session_maker, alert_config_of, None, backoff_base=0.2)
    assert worker.run_once() == 0
    [row] = deliveries(session_maker)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    # Not due again before its backoff.
    assert worker.run_once() == 0 and len(receiver.received) == 1
    time.sleep(0.3)
    assert worker.run_once() == 1
    [row] = deliveries(session_maker)
    assert (row.status, row.attempts) == ("sent", 2) and row.sent_at is not None
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-stmails-signature"] == f"sha256={expected}"
        assert headers["x-stmails-alert"] == str(alert_id)
        sent = json.loads(body)
        assert sent["event"] == "alert" and sent["alert"]["id"] == alert_id
        assert sent["alert"]["figures"] == {"bounce_rate": 5.3, "sends": 1000}


def test_unreachable_url_is_given_up_after_its_tries(session_maker: sessionmaker[Session]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    with session_maker() as session, session.begin():
        settings.set_value(
            session, "deliverability.alert_webhooks", [{"url": dead, "secret": SECRET}]
        )
    an_alert(session_maker)
    worker = Deliverer(session_maker, alert_config_of, None, backoff_base=0.0)
    for _ in range(delivery.MAX_ATTEMPTS + 2):
        worker.run_once()
    [row] = deliveries(session_maker)
    assert row.status == "failed" and row.attempts == delivery.MAX_ATTEMPTS
    assert "ConnectError" in row.last_error


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert delivery.backoff(20) == timedelta(hours=1)


def test_a_claimed_delivery_is_not_tried_by_another_worker(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session, session.begin():
        settings.set_value(session, "app.notify_emails", ["ops@example.org"])
    an_alert(session_maker)
    now = utcnow()
    first = claim_due(session_maker, now)
    assert len(first) == 1
    assert claim_due(session_maker, now) == []
    # Its lease runs out if the first worker died: then it is due again.
    assert claim_due(session_maker, now + delivery.LEASE + timedelta(seconds=1)) == first


def test_alert_email_goes_out_on_the_transactional_path(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    with session_maker() as session, session.begin():
        settings.set_value(session, "smtp", smtp_sink.smtp_settings())
        settings.set_value(session, "app.from_email", "stmails <alerts@sender.example>")
        settings.set_value(session, "sending.bounce_address", "bounces@sender.example")
        settings.set_value(session, "app.notify_emails", ["ops@example.org"])
    # Text from the outside (a campaign name, a domain) is data, never a template.
    alert_id = an_alert(session_maker, "campaign '{{ .Subscriber.Email }}' bounce rate 5.3 %")
    worker = AlertWorker(session_maker, "https://lists.example.org")
    try:
        assert worker.deliverer.run_once() == 1
    finally:
        worker.stop()
    [message] = smtp_sink.handler.messages
    assert message.rcpt_tos == ["ops@example.org"]
    parsed = message.message
    assert parsed["Subject"].startswith("[stmails] critical: campaign '{{ .Subscriber.Email }}'")
    text = parsed.get_content()
    assert f"deliverability alert #{alert_id} (bounce_rate)" in text
    assert f"https://lists.example.org/api/alerts/{alert_id}" in text
    [row] = deliveries(session_maker)
    assert row.status == "sent"


def test_no_smtp_server_keeps_the_email_pending(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session, session.begin():
        settings.set_value(session, "smtp", [])
        settings.set_value(session, "app.notify_emails", ["ops@example.org"])
    an_alert(session_maker)
    emails = AlertEmails(session_maker, "")
    worker = Deliverer(session_maker, alert_config_of, emails.send)
    assert worker.run_once() == 0
    [row] = deliveries(session_maker)
    assert row.status == "pending" and "no SMTP server" in row.last_error
    with session_maker() as session:
        assert session.scalar(select(Alert.id)) is not None
