"""Fixtures for the sending tests: a real aiosmtpd server on loopback and a small mailing world."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ingest.certs import write_certificate
from stmails.db.models import (
    Campaign,
    CampaignList,
    MailingList,
    Subscriber,
    SubscriberList,
    Template,
)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Captured:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    """Accepts everything except the recipients it was told to refuse (at RCPT or at DATA)."""

    messages: list[Captured] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = self.data_replies.get(rcpt.lower())
            if reply:
                return reply
        content = envelope.original_content or b""
        with self.lock:
            self.messages.append(
                Captured(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
            )
        return "250 2.0.0 queued"

    def recipients(self) -> list[str]:
        with self.lock:
            return [r.lower() for m in self.messages for r in m.rcpt_tos]

    def by_recipient(self, address: str) -> list[Captured]:
        with self.lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]


@dataclass
class Sink:
    host: str
    port: int
    handler: SinkHandler

    def smtp_settings(self, **extra: Any) -> list[dict[str, Any]]:
        """listmonk's `smtp` setting pointing at this sink."""
        return [
            {
                "enabled": True,
                "host": self.host,
                "port": self.port,
                "auth_protocol": "none",
                "tls_type": "none",
                "max_conns": 4,
                "max_msg_retries": 1,
                **extra,
            }
        ]


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """A real aiosmtpd server on 127.0.0.1 capturing every accepted message."""
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Sink("127.0.0.1", port, handler)
    finally:
        controller.stop()


@dataclass
class World:
    """A list (single opt-in), a double opt-in list, subscribers and a draft campaign."""

    factory: sessionmaker[DbSession]
    list_id: int
    double_list_id: int
    campaign_id: int
    subscriber_ids: dict[str, int]


def add_subscriber(
    session: DbSession,
    email: str,
    *,
    lists: dict[int, str],
    name: str = "",
    status: str = "enabled",
    attribs: dict[str, Any] | None = None,
) -> Subscriber:
    """A subscriber on `lists` ({list_id: subscription status})."""
    subscriber = Subscriber(email=email, name=name, status=status, attribs=attribs or {})
    session.add(subscriber)
    session.flush()
    for list_id, sub_status in lists.items():
        session.add(SubscriberList(subscriber_id=subscriber.id, list_id=list_id, status=sub_status))
    return subscriber


def make_world(factory: sessionmaker[DbSession], count: int = 5) -> World:
    """`count` confirmed subscribers user0..N@example.com on one list, a campaign to it."""
    with factory() as session, session.begin():
        news = MailingList(name="News", optin="single")
        double = MailingList(name="Double", optin="double")
        session.add_all([news, double])
        session.add(
            Template(
                name="Default",
                type="campaign",
                is_default=True,
                body=(
                    "<html><body><h1>Hello {{ .Subscriber.FirstName }}</h1>"
                    '{{ template "content" . }}'
                    '<p><a href="{{ UnsubscribeURL }}">Unsubscribe</a></p>'
                    "{{ TrackView }}</body></html>"
                ),
            )
        )
        session.flush()
        ids = {}
        for i in range(count):
            sub = add_subscriber(
                session,
                f"user{i}@example.com",
                lists={news.id: "confirmed"},
                name=f"User{i} Last",
                attribs={"city": "Paris" if i % 2 else "Bengaluru"},
            )
            ids[sub.email] = sub.id
        campaign = Campaign(
            name="Launch",
            subject="News for {{ .Subscriber.Name }}",
            from_email="News <news@sender.example>",
            body="<p>Hi {{ subscriber.name }} from {{ .Subscriber.Attribs.city }}</p>",
            content_type="html",
        )
        session.add(campaign)
        session.flush()
        session.add(CampaignList(campaign_id=campaign.id, list_id=news.id, list_name="News"))
        return World(factory, news.id, double.id, campaign.id, ids)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 made with our own key: (cert, key)."""
    cert, key = write_certificate(Path(tmp_path_factory.mktemp("tls")))
    return str(cert), str(key)
