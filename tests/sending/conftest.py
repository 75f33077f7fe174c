"""Fixtures for the sending tests: real aiosmtpd servers on loopback (optionally requiring AUTH
PLAIN, LOGIN or CRAM-MD5 with a real credential check, over STARTTLS or implicit TLS with our
own certificate) whose handler can refuse, drop connections or act when a message arrives; and a
small mailing world."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, Envelope, LoginPassword, Session
from aiosmtpd.smtp import SMTP as SMTPServer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from ingest.certs import write_certificate
from stmails.config import Settings
from stmails.db.models import (
    Campaign,
    CampaignList,
    MailingList,
    Subscriber,
    SubscriberList,
    Template,
)
from stmails.services import users
from stmails.services.sending.campaigns import change_status
from stmails.services.sending.config import SendingConfig
from stmails.web.app import create_app

# The API user the HTTP tests authenticate as (a Super Admin).
API = ("robot", "robot-token-0123456789")


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


# The one account the AUTH-requiring test servers know.
SMTP_USER, SMTP_PASSWORD = "mailer@example.org", "s3cret-pass word"


@dataclass
class SinkHandler:
    """Accepts everything except what it was told to refuse or break.

    - `rcpt_replies` / `data_replies`: refuse a recipient at RCPT or at DATA with that reply;
    - `mail_reply`: refuse every MAIL FROM with it;
    - `drop_at_mail`: close the connection at the next N MAIL FROM commands;
    - `drop_after_data`: recipients whose message is stored, after which the connection is
      closed without an answer (the client cannot know it was delivered);
    - `on_accept`: called (in the server's thread) with each stored message.
    """

    messages: list[Captured] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    mail_reply: str = ""
    drop_at_mail: int = 0
    drop_after_data: set[str] = field(default_factory=set)
    on_accept: Callable[[Captured], None] | None = None
    rcpt_attempts: list[str] = field(default_factory=list)
    # Mechanisms of successful logins, and every (login, password) tried with PLAIN or LOGIN.
    logins: list[str] = field(default_factory=list)
    credentials_tried: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.drop_at_mail > 0:
            self.drop_at_mail -= 1
            server.transport.close()
            return "421 4.3.0 closing"
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.lock:
            self.rcpt_attempts.append(address.lower())
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
        captured = Captured(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
        with self.lock:
            self.messages.append(captured)
        if self.on_accept is not None:
            self.on_accept(captured)
        if any(r.lower() in self.drop_after_data for r in envelope.rcpt_tos):
            server.transport.close()
        return "250 2.0.0 queued"

    async def auth_CRAM__MD5(self, server: SMTPServer, args: list[str]) -> AuthResult:
        """RFC 2195: the client answers a challenge with its name and an HMAC-MD5 of the
        challenge under the password."""
        challenge = f"<{secrets.token_hex(8)}@stmails.test>".encode()
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False)
        assert isinstance(answer, bytes)
        login, _, digest = answer.decode().rpartition(" ")
        expected = hmac.new(SMTP_PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        ok = login == SMTP_USER and hmac.compare_digest(digest, expected)
        if ok:
            self.logins.append("CRAM-MD5")
        return AuthResult(success=ok, handled=False)

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator for PLAIN and LOGIN: the one known account."""
        if isinstance(data, LoginPassword):
            self.credentials_tried.append((data.login.decode(), data.password.decode()))
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and hmac.compare_digest(data.password.decode(), SMTP_PASSWORD)
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

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
    # What `smtp_settings` says unless told otherwise (the TLS mode, AUTH credentials).
    defaults: dict[str, Any] = field(default_factory=dict)

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
                **self.defaults,
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


MakeServer = Callable[..., Sink]


class _ImplicitTlsController(Controller):
    """aiosmtpd knows TLS only as STARTTLS and warns of AUTH "without TLS" on a connection
    that is TLS from its first byte: the warning is wrong there."""

    def factory(self) -> SMTPServer:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


@pytest.fixture
def smtp_server(certificate: tuple[str, str]) -> Iterator[MakeServer]:
    """Starts real aiosmtpd servers: `smtp_server(tls="starttls"|"tls"|"none", auth=True)`.

    With `auth`, every transaction needs AUTH (PLAIN, LOGIN or CRAM-MD5) as `SMTP_USER`; with
    STARTTLS the server offers AUTH only after it. TLS uses our own self-signed certificate
    (the settings say `tls_skip_verify`, as nothing vouches for it)."""
    controllers: list[Controller] = []

    def start(tls: str = "starttls", auth: bool = True) -> Sink:
        handler = SinkHandler()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        options: dict[str, Any] = {}
        if tls == "starttls":
            options = {"tls_context": context, "require_starttls": True}
        elif tls == "tls":
            options = {"ssl_context": context}
        if auth:
            # Over implicit TLS aiosmtpd does not see a STARTTLS, so it is told TLS is there.
            options.update(
                authenticator=handler.authenticate,
                auth_required=True,
                auth_require_tls=tls == "starttls",
            )
        port = free_port()
        kind = _ImplicitTlsController if tls == "tls" else Controller
        controller = kind(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        defaults: dict[str, Any] = {"tls_type": tls, "tls_skip_verify": tls != "none"}
        if auth:
            defaults.update(auth_protocol="login", username=SMTP_USER, password=SMTP_PASSWORD)
        return Sink("127.0.0.1", port, handler, defaults)

    yield start
    for controller in controllers:
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


def start(world: World, config: SendingConfig) -> None:
    """Sets the world's campaign running (as `PUT /api/campaigns/{id}/status` does)."""
    with world.factory() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        change_status(session, campaign, "running", config)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 made with our own key: (cert, key)."""
    cert, key = write_certificate(Path(tmp_path_factory.mktemp("tls")))
    return str(cert), str(key)


@pytest.fixture
def app(engine: Engine, session_maker: sessionmaker[DbSession], db_url: str) -> FastAPI:
    """The real application on the emptied test database, with the API user `API`."""
    with session_maker() as session:
        users.create_api_user(session, *API)
        session.commit()
    settings = Settings(
        database_url=db_url, secret_key="test-secret-key", root_url="https://lists.example.org"
    )
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of `app` (lifespan running) authenticated as `API`."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = API
        yield test_client
