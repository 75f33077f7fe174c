"""DKIM signing in every send path, end to end: keys made and activated through the API (which
asks a real DNS server on loopback for the record), mail sent by the campaign sender, the
transactional API and the SMTP relay into a real aiosmtpd server, and each received message
verified by dkimpy against the public key that DNS server publishes. Rotation: the new key
signs once active; a key that cannot be used stops the mail instead of sending it unsigned."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Iterator

import dkim
import dns.resolver
import pytest
from dnslib import TXT
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dnszone import Zone, serve, sync_resolver
from stmails.db.models import Campaign, DkimKey
from stmails.services import dkim_keys, roles, users
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for, verp_maker
from stmails.services.sending.smtp import SmtpPool
from stmails.web.api.domains import DNS_RESOLVER
from stmails.workers.relay import RelayHandler, make_controller, relay_login, tls_context
from stmails.workers.sender import SenderLoop

from .conftest import Sink, free_port, make_world

# The app fixture's secret key, which the stored keys are encrypted under.
SECRET = b"test-secret-key"
ROOT = "https://lists.example.org"


@pytest.fixture(scope="module")
def dns_zone() -> Iterator[tuple[Zone, int]]:
    zone = Zone()
    with serve(zone) as port:
        yield zone, port


@pytest.fixture
def dns_app(app: FastAPI, dns_zone: tuple[Zone, int]) -> FastAPI:
    app.state.stmails.extras[DNS_RESOLVER] = lambda: sync_resolver(dns_zone[1])
    return app


def _publish(zone: Zone, record: dict[str, object]) -> None:
    chunks = record["chunks"]
    assert isinstance(chunks, list)
    zone.replace(str(record["name"]), "TXT", TXT([str(c).encode() for c in chunks]))


def _verify(message: bytes, port: int) -> bool:
    resolver = sync_resolver(port)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return b""
        return b"".join(next(iter(answer)).strings)  # type: ignore[attr-defined]

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def _signature(message: bytes) -> dict[bytes, bytes]:
    """The tags of the message's first DKIM-Signature."""
    head = message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b"").replace(b"\r\n ", b" ")
    line = next(x for x in head.split(b"\r\n") if x.lower().startswith(b"dkim-signature:"))
    tags = [t.strip().split(b"=", 1) for t in line.split(b":", 1)[1].split(b";") if b"=" in t]
    return {k: v.replace(b" ", b"") for k, v in tags}


def _new_active_key(client: TestClient, zone: Zone, domain: str, selector: str) -> None:
    created = client.post(f"/api/domains/{domain}/dkim", json={"selector": selector, "bits": 1024})
    assert created.status_code == 200, created.text
    # Activation is refused while DNS does not publish the key.
    early = client.put(f"/api/domains/{domain}/dkim/{selector}", json={"status": "active"})
    assert early.status_code == 400, early.text
    _publish(zone, created.json()["data"]["dns_record"])
    active = client.put(f"/api/domains/{domain}/dkim/{selector}", json={"status": "active"})
    assert active.status_code == 200, active.text


def _smtp(client: TestClient, sink: Sink) -> None:
    body = {"smtp": sink.smtp_settings(), "sending.bounce_address": "bounces@mail.example.org"}
    assert client.put("/api/settings", json=body).status_code == 200


def _campaign_pass(factory: sessionmaker[Session], campaign_id: int, client: TestClient) -> None:
    started = client.put(f"/api/campaigns/{campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    loop = SenderLoop(factory, root_url=ROOT, verp=verp_maker(SECRET), dkim_secret=SECRET)
    assert loop.run_once() == 1
    loop.close()


def test_campaign_and_tx_mail_is_signed_and_rotation_switches_the_signing_key(
    dns_app: FastAPI,
    dns_zone: tuple[Zone, int],
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
) -> None:
    zone, port = dns_zone
    world = make_world(session_maker, count=3)
    with TestClient(dns_app, raise_server_exceptions=False) as client:
        client.auth = ("robot", "robot-token-0123456789")
        _smtp(client, smtp_sink)
        _new_active_key(client, zone, "sender.example", "one")
        _campaign_pass(session_maker, world.campaign_id, client)
        campaign_mail = [c.data for c in smtp_sink.handler.messages]
        assert len(campaign_mail) == 3
        for data in campaign_mail:
            tags = _signature(data)
            assert (tags[b"d"], tags[b"s"]) == (b"sender.example", b"one")
            # The unsubscribe headers are signed (RFC 8058), and the body is covered.
            assert b"list-unsubscribe-post" in tags[b"h"].lower()
            assert _verify(data, port)
        # A changed body no longer verifies: the signature covers it.
        assert not _verify(campaign_mail[0].replace(b"Hello", b"Hallo", 1), port)

        # Rotation: a second key, published beside the first and activated, signs from then
        # on; the first (retiring, still published) keeps verifying the mail it signed.
        _new_active_key(client, zone, "sender.example", "two")
        sent = client.post(
            "/api/tx/raw",
            json={
                "to": ["someone@example.net"],
                "subject": "Your receipt",
                "from_email": "Shop <shop@sender.example>",
                "body": "Thank you.",
                "content_type": "plain",
            },
        )
        assert sent.status_code == 200, sent.text
        tx = smtp_sink.handler.by_recipient("someone@example.net")[0].data
        assert _signature(tx)[b"s"] == b"two" and _verify(tx, port)
        assert all(_verify(data, port) for data in campaign_mail)
        # The SMTP test of the settings page is signed like the rest.
        from_app = {"app.from_email": "App <app@sender.example>"}
        assert client.put("/api/settings", json=from_app).status_code == 200
        tested = client.post(
            "/api/settings/smtp/test",
            json={**smtp_sink.smtp_settings()[0], "email": "admin@example.net"},
        )
        assert tested.status_code == 200, tested.text
        probe = smtp_sink.handler.by_recipient("admin@example.net")[0].data
        assert _signature(probe)[b"s"] == b"two" and _verify(probe, port)
        keys = client.get("/api/domains/sender.example/dkim").json()["data"]
        assert {k["selector"]: k["status"] for k in keys} == {"one": "retiring", "two": "active"}

        # Mail from a domain without a key goes out unsigned.
        other = client.post(
            "/api/tx/raw",
            json={
                "to": ["other@example.net"],
                "subject": "Hello",
                "from_email": "other@unsigned.example",
                "body": "x",
                "content_type": "plain",
            },
        )
        assert other.status_code == 200, other.text
        unsigned = smtp_sink.handler.by_recipient("other@example.net")[0].data
        assert b"dkim-signature" not in unsigned.lower()


def test_a_subdomain_is_signed_by_its_parent_domains_key(
    session: Session, dns_zone: tuple[Zone, int]
) -> None:
    zone, port = dns_zone
    key = dkim_keys.generate_key(session, SECRET, "parent.example", "p1", bits=1024)
    dkim_keys.activate(session, key)
    record = dkim_keys.dns_record(key)
    _publish(zone, record.to_dict())
    signer = dkim_keys.load_signer(session, SECRET)
    message = b"From: a@news.parent.example\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n"
    assert signer.key_for("news.parent.example") == ("parent.example", "p1")
    # Never a bare top-level domain's key, nor one of an unrelated domain.
    assert signer.key_for("example") is None and signer.key_for("parent.other") is None
    signed = signer.sign(message)
    assert _signature(signed)[b"d"] == b"parent.example" and _verify(signed, port)
    assert signer.sign(b"From: a@elsewhere.example\r\n\r\nx\r\n").startswith(b"From:")


def test_a_key_that_does_not_decrypt_stops_mail_instead_of_sending_it_unsigned(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=2)
    _smtp(client, smtp_sink)
    with session_maker() as session, session.begin():
        # Stored under another secret key (as after the app's secret was changed).
        key = dkim_keys.generate_key(session, b"an old secret", "sender.example", "old", 1024)
        dkim_keys.activate(session, key)
    _campaign_pass(session_maker, world.campaign_id, client)
    assert smtp_sink.handler.messages == []
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None and campaign.status == "paused"
        assert "DKIM signing failed" in campaign.pause_reason
        assert "secret key" in campaign.pause_reason

    failed = client.post(
        "/api/tx/raw",
        json={
            "to": ["x@example.net"],
            "subject": "s",
            "from_email": "a@sender.example",
            "body": "b",
            "content_type": "plain",
        },
    )
    assert failed.status_code == 422, failed.text
    result = failed.json()["data"]["results"][0]
    assert result["status"] == "failed" and "DKIM signing failed" in result["error"]
    assert smtp_sink.handler.messages == []


def test_relayed_mail_is_signed_with_the_key_active_now(
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
    certificate: tuple[str, str],
    dns_zone: tuple[Zone, int],
) -> None:
    zone, port = dns_zone
    app_login = ("app", "s3cret-token-0123456789")
    with session_maker() as session, session.begin():
        users.create_api_user(session, *app_login, role=roles.create(session, "r", ["relay:send"]))
    config = SendingConfig.from_settings(
        {"smtp": smtp_sink.smtp_settings(), "sending.bounce_address": "bounce@mail.example.org"}
    )
    pool = SmtpPool(config.smtp)
    handler = RelayHandler(
        session_maker, pool.send, config, return_path_for(config, None), record_bounce, SECRET
    )
    relay_port = free_port()
    controller = make_controller(
        handler, relay_login(session_maker), host="127.0.0.1", port=relay_port,
        tls=tls_context(*certificate),
    )  # fmt: skip
    controller.start()
    context = ssl.create_default_context(cafile=certificate[0])
    message = b"From: App <app@relay.example>\r\nTo: f@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
    try:
        # No key yet: relayed as it came.
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login(*app_login)
            smtp.sendmail("app@relay.example", ["f@example.net"], message)
        with session_maker() as session, session.begin():
            key = dkim_keys.generate_key(session, SECRET, "relay.example", "r1", bits=1024)
            dkim_keys.activate(session, key)
            _publish(zone, dkim_keys.dns_record(key).to_dict())
        # The key activated while the relay runs signs the next message.
        with smtplib.SMTP("127.0.0.1", relay_port, timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login(*app_login)
            smtp.sendmail("app@relay.example", ["f@example.net"], message)
    finally:
        controller.stop()
        pool.close()
    first, second = (c.data for c in smtp_sink.handler.messages)
    assert b"dkim-signature" not in first.lower()
    assert _signature(second)[b"s"] == b"r1" and _verify(second, port)
    with session_maker() as session:
        assert session.query(DkimKey).count() == 1


def test_the_openssl_signature_is_byte_for_byte_dkimpys_own(session: Session) -> None:
    key = dkim_keys.generate_key(session, SECRET, "fast.example", "f1", bits=2048)
    pem = dkim_keys.private_key_pem(SECRET, key)
    message = b"From: a@fast.example\r\nTo: b@example.net\r\nSubject: s\r\n\r\nbody\r\n"
    parsed = dkim.parse_pem_private_key(pem)
    # The accelerated parse is dkimpy's own dict (plus the OpenSSL key), cached.
    assert dict(parsed) == dkim_keys._DKIMPY_PARSE(pem)
    assert dkim.parse_pem_private_key(pem) is parsed
    for name in ("sha256", "sha1"):
        digest = hashlib.new(name, message)
        fast = dkim.RSASSA_PKCS1_v1_5_sign(digest, parsed)
        slow = dkim_keys._DKIMPY_SIGN(digest, dkim_keys._DKIMPY_PARSE(pem))
        assert fast == bytes(slow)
