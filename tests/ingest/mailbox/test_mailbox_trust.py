"""bounce.mailbox_trust end to end: stmails sends real mail (campaign and transactional) through
a real SMTP server, bounces of it and forged ones arrive in a real Dovecot mailbox, the mailbox
worker scans it, and the API shows what acted and what was only recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import Sink, make_world, smtp_sink  # noqa: F401 (fixture)
from stmails.config import Settings
from stmails.services import users
from stmails.services.sending.runtime import verp_maker
from stmails.web.app import create_app
from stmails.workers.mailbox import MailboxWorker
from stmails.workers.sender import SenderLoop

from .conftest import Mailbox
from .test_worker import served_entry

pytestmark = pytest.mark.integration

API = ("robot", "robot-token-0123456789")
SECRET = "mailbox-trust-secret"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        secret_key=SECRET,
        root_url="https://lists.example.org",
    )


@pytest.fixture
def app(engine: Engine, session_maker: sessionmaker[Session], settings: Settings) -> FastAPI:
    with session_maker() as session:
        users.create_api_user(session, *API)
        session.commit()
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = API
        yield test_client


def configure(client: TestClient, sink: Sink, mailbox: Mailbox, **extra: object) -> None:
    body = {
        "smtp": sink.smtp_settings(),
        "sending.bounce_address": "bounces@mail.example.org",
        "bounce.mailboxes": [served_entry(mailbox)],
        **extra,
    }
    response = client.put("/api/settings", json=body)
    assert response.status_code == 200, response.text


def returned(original: bytes, recipient: str, *, to: str = "bounces@mail.example.org") -> bytes:
    """A remote MTA's report that `original` could not be delivered to `recipient`, quoting
    its header (as Postfix does)."""
    header = original.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].replace(b"\n", b"\r\n")
    report = (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.dest.example>\r\nTo: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RB"\r\n\r\n'
        "--RB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        "--RB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.dest.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n\r\n"
        "--RB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ).encode()
    return report + header + b"\r\n\r\n--RB--\r\n"


def forged(recipient: str, campaign_uuid: str, subscriber_uuid: str) -> bytes:
    """A report anybody can write: it names a subscriber (whose uuid leaked) and a real
    campaign, with a Message-ID stmails never made."""
    header = (
        f"From: News <news@sender.example>\r\nTo: {recipient}\r\nSubject: Launch\r\n"
        f"Message-ID: <made-up-1@mail.example.org>\r\nX-Stmails-Campaign: {campaign_uuid}\r\n"
        f"X-Stmails-Subscriber: {subscriber_uuid}"
    ).encode()
    return returned(header, recipient)


def scan(session_maker: sessionmaker[Session], settings: Settings, mailbox: Mailbox) -> None:
    """Scan the mailbox until every message in it was handled. The app's own mailbox worker
    may get there first (it holds the same lock): the outcome is the same."""
    worker = MailboxWorker(session_maker, settings)
    try:
        for round_ in range(60):
            summaries = worker.run_due(1000.0 + 3600 * round_)
            assert [s.failed for s in summaries] in ([], [0])
            if not mailbox.subjects():
                return
            time.sleep(0.5)
    finally:
        worker.stop()
    pytest.fail("the mailbox was never emptied")


def subscriber(client: TestClient, subscriber_id: int) -> dict[str, object]:
    found = client.get(f"/api/subscribers/{subscriber_id}").json()["data"]
    assert isinstance(found, dict)
    return found


def is_suppressed(client: TestClient, address: str) -> bool:
    return client.get(f"/api/suppressions/{address}").status_code == 200


def bounces_by_email(client: TestClient) -> dict[str, dict[str, object]]:
    rows = client.get("/api/bounces", params={"per_page": "all"}).json()["data"]["results"]
    return {row["email"]: row for row in rows}


def test_only_bounces_of_mail_stmails_sent_act_under_the_default_trust(
    client: TestClient,
    session_maker: sessionmaker[Session],
    settings: Settings,
    smtp_sink: Sink,  # noqa: F811
    mailbox: Mailbox,
) -> None:
    world = make_world(session_maker, count=4)
    ids = world.subscriber_ids
    configure(client, smtp_sink, mailbox)
    assert client.get("/api/settings").json()["data"]["bounce.mailbox_trust"] == "sent"
    # A campaign, sent by the real sender loop (no VERP: Message-IDs are the evidence)...
    started = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    loop = SenderLoop(session_maker, root_url=settings.root_url, verp=verp_maker(SECRET.encode()))
    assert loop.run_once() == 1
    loop.close()
    # ...and a transactional message through the API.
    template = client.post(
        "/api/templates",
        json={"name": "Code", "type": "tx", "subject": "Code", "body": "<p>{{ .Tx.Data.c }}</p>"},
    ).json()["data"]
    tx = client.post(
        "/api/tx",
        json={"subscriber_email": "user1@example.com", "template_id": template["id"]},
    )
    assert tx.status_code == 200, tx.text
    campaign_mail = smtp_sink.handler.by_recipient("user0@example.com")[0]
    tx_mail = smtp_sink.handler.by_recipient("user1@example.com")[-1]
    attacker_mail = smtp_sink.handler.by_recipient("user3@example.com")[0]
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    user2 = subscriber(client, ids["user2@example.com"])

    mailbox.append(
        returned(campaign_mail.data, "user0@example.com"),
        returned(tx_mail.data, "user1@example.com"),
        forged("user2@example.com", campaign["uuid"], str(user2["uuid"])),
        # The attacker quotes a genuine message of their own, naming an outsider.
        returned(attacker_mail.data, "outsider@elsewhere.example"),
    )
    scan(session_maker, settings, mailbox)

    assert subscriber(client, ids["user0@example.com"])["status"] == "blocklisted"
    assert subscriber(client, ids["user1@example.com"])["status"] == "blocklisted"
    assert is_suppressed(client, "user0@example.com")
    assert is_suppressed(client, "user1@example.com")
    # The forged report: recorded, shown as unattributed with the reason, acting on nobody.
    assert subscriber(client, ids["user2@example.com"])["status"] == "enabled"
    assert not is_suppressed(client, "user2@example.com")
    rows = bounces_by_email(client)
    assert rows["user0@example.com"]["attributed"] is True
    assert rows["user0@example.com"]["meta"]["attribution"] == "message_id"  # type: ignore[index]
    assert rows["user0@example.com"]["campaign_uuid"] == campaign["uuid"]
    assert rows["user1@example.com"]["meta"]["attribution"] == "signed_message_id"  # type: ignore[index]
    assert rows["user2@example.com"]["attributed"] is False
    assert "Message-ID" in rows["user2@example.com"]["meta"]["unattributed"]  # type: ignore[index]
    assert rows["user2@example.com"]["campaign"] is None
    # The attacker's own Message-ID acts on the attacker's address only.
    assert not is_suppressed(client, "outsider@elsewhere.example")
    assert rows["user3@example.com"]["meta"]["reported_recipient"] == (  # type: ignore[index]
        "outsider@elsewhere.example"
    )
    stats = client.get(f"/api/campaigns/{world.campaign_id}/stats").json()["data"]
    assert stats["bounces"]["hard"] == 2, "the forged bounce of the campaign is not counted"

    # A value that cannot work is refused, naming the setting; "any" is the old behaviour.
    refused = client.put("/api/settings", json={"bounce.mailbox_trust": "everything"})
    assert refused.status_code == 400 and "bounce.mailbox_trust" in refused.json()["message"]
    assert client.put("/api/settings", json={"bounce.mailbox_trust": "any"}).status_code == 200
    mailbox.append(forged("user2@example.com", campaign["uuid"], str(user2["uuid"])) + b" ")
    scan(session_maker, settings, mailbox)
    assert subscriber(client, ids["user2@example.com"])["status"] == "blocklisted"
    assert is_suppressed(client, "user2@example.com")


def test_verp_trust_acts_on_genuine_tokens_only(
    client: TestClient,
    session_maker: sessionmaker[Session],
    settings: Settings,
    smtp_sink: Sink,  # noqa: F811
    mailbox: Mailbox,
) -> None:
    world = make_world(session_maker, count=2)
    ids = world.subscriber_ids
    configure(client, smtp_sink, mailbox, **{"sending.verp": True, "bounce.mailbox_trust": "verp"})
    client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    loop = SenderLoop(session_maker, root_url=settings.root_url, verp=verp_maker(SECRET.encode()))
    loop.run_once()
    loop.close()
    first = smtp_sink.handler.by_recipient("user0@example.com")[0]
    second = smtp_sink.handler.by_recipient("user1@example.com")[0]
    assert first.mail_from.startswith("bounces+")
    # A token made with another key, on a report that quotes a genuine Message-ID. The genuine
    # token is only in the envelope (stmails writes no Return-Path header), so the quoted
    # original cannot vouch for the report.
    foreign = verp_maker(b"another-instance")(
        "bounces@mail.example.org", 1, ids["user1@example.com"]
    )
    assert second.mail_from.encode() not in second.data
    mailbox.append(
        returned(first.data, "user0@example.com", to=first.mail_from),
        returned(second.data, "user1@example.com", to=foreign),
    )
    scan(session_maker, settings, mailbox)
    assert subscriber(client, ids["user0@example.com"])["status"] == "blocklisted"
    assert subscriber(client, ids["user1@example.com"])["status"] == "enabled"
    rows = bounces_by_email(client)
    assert rows["user0@example.com"]["meta"]["attribution"] == "verp"  # type: ignore[index]
    assert rows["user1@example.com"]["attributed"] is False
    assert "VERP" in rows["user1@example.com"]["meta"]["unattributed"]  # type: ignore[index]
