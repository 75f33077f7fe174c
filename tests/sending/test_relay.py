"""`stmails relay` end to end: a real aiosmtpd relay forwarding to a real aiosmtpd upstream,
authenticating real API users (their role must grant `relay:send`)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.verp import VerpToken, find_token
from stmails.db.models import Bounce
from stmails.services import roles, suppression, users
from stmails.services import settings as settings_service
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for, verp_maker
from stmails.services.sending.smtp import SmtpPool
from stmails.workers.relay import (
    RelayHandler,
    make_controller,
    relay_login,
    rewrite_headers,
    tls_context,
)

from .conftest import Sink, add_subscriber, free_port

VERP_SECRET = b"relay-verp-secret"

MESSAGE = (
    b"From: App <app@example.org>\r\nTo: someone\r\nSubject: hello\r\n"
    b"Return-Path: <client@forged.example>\r\n\r\nbody line\r\n"
)
APP = ("app", "s3cret-token-0123456789")


def _api_user(factory: sessionmaker[Session], name: str, *permissions: str) -> str:
    """An API user whose role grants `permissions`; returns its token."""
    with factory() as session:
        role = roles.create(session, f"role of {name}", list(permissions))
        _, token = users.create_api_user(session, name, role=role)
        session.commit()
    return token


@pytest.fixture
def relay(
    session_maker: sessionmaker[Session], smtp_sink: Sink, certificate: tuple[str, str]
) -> Iterator[int]:
    with session_maker() as session:
        users.create_api_user(session, *APP, role=roles.create(session, "relay", ["relay:send"]))
        session.commit()
    config = SendingConfig.from_settings(
        {
            "smtp": smtp_sink.smtp_settings(),
            "sending.bounce_address": "bounce@mail.example.org",
            "sending.verp": True,
        }
    )
    pool = SmtpPool(config.smtp)
    return_paths = return_path_for(config, verp_maker(VERP_SECRET))
    handler = RelayHandler(session_maker, pool.send, config, return_paths, record_bounce)
    port = free_port()
    controller = make_controller(
        handler,
        relay_login(session_maker),
        host="127.0.0.1",
        port=port,
        tls=tls_context(*certificate),
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
        pool.close()


def _client(port: int, certificate: tuple[str, str], login: tuple[str, str] = APP) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.starttls(context=_trusting(certificate))
    client.login(*login)
    return client


def test_relay_requires_auth_after_starttls(relay: int, certificate: tuple[str, str]) -> None:
    with smtplib.SMTP("127.0.0.1", relay, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        # No AUTH offered in clear text, and mail without AUTH is refused.
        assert not client.has_extn("auth")
        code, _ = client.mail("app@example.org")
        assert code == 530
    with smtplib.SMTP("127.0.0.1", relay, timeout=10) as client:
        client.starttls(context=_trusting(certificate))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("app", "wrong")


def test_relay_needs_a_role_with_relay_send(
    relay: int,
    certificate: tuple[str, str],
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
) -> None:
    # An API user whose role may send transactional mail, but not relay it.
    token = _api_user(session_maker, "tx-only", "tx:send")
    with smtplib.SMTP("127.0.0.1", relay, timeout=10) as client:
        client.starttls(context=_trusting(certificate))
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("tx-only", token)
        assert refused.value.smtp_code == 535
        assert b"relay:send required" in refused.value.smtp_error
        code, _ = client.mail("app@example.org")
        assert code == 530
    assert smtp_sink.handler.messages == []


def test_relay_accepts_only_the_allowed_sender_domains(
    relay: int,
    certificate: tuple[str, str],
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
) -> None:
    with session_maker() as session:
        settings_service.update(session, {"relay.sender_domains": ["Example.org"]})
        session.commit()
    with _client(relay, certificate) as client:
        code, reply = client.mail("someone@elsewhere.example")
        assert (code, b"sender domain not allowed" in reply) == (553, True)
        assert client.mail("app@example.org")[0] == 250
        assert client.rcpt("friend@example.net")[0] == 250
        forged = MESSAGE.replace(b"app@example.org", b"ceo@elsewhere.example")
        code, reply = client.data(forged)
        assert (code, b"From domain not allowed" in reply) == (550, True)
        client.rset()
        client.mail("app@example.org")
        client.rcpt("friend@example.net")
        assert client.data(MESSAGE)[0] == 250
    assert [c.rcpt_tos for c in smtp_sink.handler.messages] == [["friend@example.net"]]


def _trusting(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certificate[0])
    context.check_hostname = False
    return context


def test_relay_refuses_suppressed_and_forwards_with_our_headers(
    relay: int,
    certificate: tuple[str, str],
    smtp_sink: Sink,
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session, session.begin():
        suppression.add(session, reason="complaint", email="angry@example.net", source="fbl")
        friend_id = add_subscriber(session, "friend@example.net", lists={}).id
    with _client(relay, certificate) as client:
        client.mail("app@example.org")
        code, reply = client.rcpt("angry@example.net")
        assert code == 550
        assert b"5.7.1" in reply and b"complaint" in reply
        assert client.rcpt("friend@example.net")[0] == 250
        assert client.data(MESSAGE)[0] == 250
    assert smtp_sink.handler.recipients() == ["friend@example.net"]
    captured = smtp_sink.handler.messages[0]
    # A subscriber's mail goes out from a VERP return path naming them (and no campaign).
    assert captured.mail_from.endswith("@mail.example.org")
    token = find_token(VERP_SECRET, captured.mail_from.encode())
    assert token == VerpToken(subscriber_id=friend_id)
    msg = captured.message
    # The client's Return-Path is dropped and none is written: the receiver adds its own.
    assert "Return-Path" not in msg
    assert msg["X-Stmails-Subscriber"]
    assert msg["Message-ID"].endswith("@mail.example.org>")
    assert msg["Subject"] == "hello"


def test_relay_reports_upstream_refusal_and_records_bounce(
    relay: int,
    certificate: tuple[str, str],
    smtp_sink: Sink,
    session_maker: sessionmaker[Session],
) -> None:
    smtp_sink.handler.rcpt_replies["gone@example.net"] = "550 5.1.1 no such user"
    with _client(relay, certificate) as client:
        client.mail("app@example.org")
        assert client.rcpt("gone@example.net")[0] == 250
        code, reply = client.data(MESSAGE)
    assert code == 550 and b"no such user" in reply
    with session_maker() as session:
        bounce = session.scalar(select(Bounce))
        assert bounce is not None and bounce.email == "gone@example.net"
        assert bounce.source == "smtp"


def test_relay_forwards_from_the_upstreams_return_path(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    config = SendingConfig.from_settings(
        {
            "smtp": smtp_sink.smtp_settings(
                email_headers=[{"Return-Path": "relay-bounces@mail.example.org"}]
            ),
            "sending.bounce_address": "bounce@mail.example.org",
        }
    )
    pool = SmtpPool(config.smtp)
    handler = RelayHandler(
        session_maker, pool.send, config, return_path_for(config, None), record_bounce
    )
    assert handler._forward("app@example.org", ["a@example.net"], MESSAGE).startswith("250")
    pool.close()
    (captured,) = smtp_sink.handler.messages
    assert captured.mail_from == "relay-bounces@mail.example.org"
    assert "Return-Path" not in captured.message


def test_rewrite_headers_keeps_body_and_folds() -> None:
    out = rewrite_headers(
        b"Subject: a\n long\nReturn-Path: <x@y>\n\nline1\nline2\n",
        [("X-Stmails-Subscriber", "s")],
        "z",
    )
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"X-Stmails-Subscriber: s" in head and b"x@y" not in head
    assert b"Subject: a\r\n long" in head and b"Message-ID: <" in head
    assert body == b"line1\r\nline2\r\n"
