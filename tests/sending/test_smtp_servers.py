"""Sending through SMTP servers as users have them: AUTH (PLAIN, LOGIN, CRAM-MD5) over STARTTLS
or implicit TLS, with the bounce address in the server's custom headers as the user's own
setup guide says (`{"Return-Path": "your-bounce-inbox@site.com"}`); and what each way of
failing does to the campaign and its `campaign_sends`.

The servers are real aiosmtpd servers on loopback with a real credential check and our own
certificate; campaigns go through the API and the sender loop, as a user's would.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core import verp
from stmails.db.models import Bounce, Campaign, CampaignSend
from stmails.services.bounces import record as record_bounce
from stmails.services.sending.campaigns import IN_DOUBT, CampaignRunner, campaign_stats
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for, verp_maker
from stmails.services.sending.smtp import SmtpPool
from stmails.workers.mailbox import verp_prefix
from stmails.workers.sender import SenderLoop

from .conftest import MakeServer, Sink, World, free_port, make_world, start

BOUNCE_INBOX = "bounces@mail.example.org"
SECRET = b"test-secret-key"


def _world_with_suppressions(client: TestClient, factory: sessionmaker[Session]) -> World:
    """100 subscribers on the campaign's list; every tenth address is suppressed."""
    world = make_world(factory, count=100)
    suppressed = [
        {"recipient": f"user{n}@example.com", "reason": "hard_bounce"} for n in range(0, 100, 10)
    ]
    assert client.put("/api/suppressions", json=suppressed).status_code == 200
    return world


def _send_through_the_api(client: TestClient, factory: sessionmaker[Session], world: World) -> None:
    response = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert response.status_code == 200, response.text
    loop = SenderLoop(factory, root_url="https://lists.example.org", verp=verp_maker(SECRET))
    assert loop.run_once() == 1
    loop.close()


@pytest.mark.parametrize("tls", ["starttls", "tls"])
@pytest.mark.parametrize("auth", ["plain", "login", "cram"])
def test_the_users_setup_reaches_exactly_the_unsuppressed_subscribers(
    client: TestClient,
    session_maker: sessionmaker[Session],
    smtp_server: MakeServer,
    tls: str,
    auth: str,
) -> None:
    server = smtp_server(tls=tls, auth=True)
    settings = {
        "smtp": server.smtp_settings(
            auth_protocol=auth, email_headers=[{"Return-Path": BOUNCE_INBOX}]
        )
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    world = _world_with_suppressions(client, session_maker)
    _send_through_the_api(client, session_maker, world)

    expected = sorted(f"user{n}@example.com" for n in range(100) if n % 10)
    assert sorted(server.handler.recipients()) == expected
    mechanism = {"plain": "PLAIN", "login": "LOGIN", "cram": "CRAM-MD5"}[auth]
    assert server.handler.logins and set(server.handler.logins) == {mechanism}
    for captured in server.handler.messages:
        # The header's address is the envelope sender, and stmails writes no Return-Path.
        assert captured.mail_from == BOUNCE_INBOX
        assert b"\nreturn-path:" not in b"\n" + captured.data.lower()
    stats = client.get(f"/api/campaigns/{world.campaign_id}/stats").json()["data"]
    assert (stats["status"], stats["sent"], stats["skipped"]) == ("finished", 90, 10)
    assert (stats["send_errors"], stats["in_doubt"], stats["pause_reason"]) == (0, 0, "")


def test_verp_applies_to_the_servers_return_path_and_the_scanner_reads_it(
    client: TestClient, session_maker: sessionmaker[Session], smtp_server: MakeServer
) -> None:
    server = smtp_server(tls="starttls", auth=True)
    settings = {
        "smtp": server.smtp_settings(email_headers=[{"Return-Path": "returns@bounce.example.org"}]),
        "sending.verp": True,
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    world = make_world(session_maker, count=3)
    _send_through_the_api(client, session_maker, world)
    prefix = verp_prefix(session_maker)
    assert prefix == "returns"
    for captured in server.handler.messages:
        assert captured.mail_from.startswith("returns+")
        assert captured.mail_from.endswith("@bounce.example.org")
        token = verp.find_token(SECRET, captured.mail_from.encode(), prefix)
        subscriber = world.subscriber_ids[captured.rcpt_tos[0]]
        assert token == verp.VerpToken(subscriber_id=subscriber, campaign_id=world.campaign_id)


def test_a_wrong_password_pauses_the_campaign_with_the_reason_and_nothing_counts_as_sent(
    client: TestClient,
    session_maker: sessionmaker[Session],
    smtp_server: MakeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = smtp_server(tls="starttls", auth=True)
    smtp = server.smtp_settings(password="not the password")
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    world = _world_with_suppressions(client, session_maker)
    _send_through_the_api(client, session_maker, world)

    assert server.handler.messages == [] and server.handler.logins == []
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert campaign["status"] == "paused"
    assert campaign["sent"] == 0
    assert "auth: 535 5.7.8 Authentication credentials invalid" in campaign["pause_reason"]
    assert campaign["send_errors"] == 1
    assert campaign["last_errors"][0]["stage"] == "auth"
    stats = client.get(f"/api/campaigns/{world.campaign_id}/stats").json()["data"]
    assert (stats["sent"], stats["in_doubt"], stats["sending"]) == (0, 0, 0)
    assert stats["pause_reason"] == campaign["pause_reason"]
    assert "paused" in caplog.text and "535" in caplog.text
    with session_maker() as session:
        # Nothing was delivered: every recipient is still to be sent (the suppressed ones
        # were skipped before SMTP, as they always are).
        rows = session.scalars(select(CampaignSend)).all()
        assert {r.status for r in rows} == {"skipped"} and len(rows) <= 10

    # Once the password is right, resuming sends to everyone not suppressed.
    assert client.put("/api/settings", json={"smtp": server.smtp_settings()}).status_code == 200
    _send_through_the_api(client, session_maker, world)
    assert len(server.handler.recipients()) == 90
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert (campaign["status"], campaign["sent"], campaign["pause_reason"]) == ("finished", 90, "")


# -- each way of failing, and what it leaves behind ---------------------------------------------


def _broken(kind: str, make: MakeServer) -> tuple[dict[str, Any], Sink | None]:
    """The `smtp` entry of a server that fails in the way `kind` says, and the server."""
    if kind == "connect refused":
        return {"host": "127.0.0.1", "port": free_port(), "max_msg_retries": 1}, None
    if kind == "certificate not trusted":
        server = make(tls="tls", auth=False)
        return server.smtp_settings(tls_skip_verify=False)[0], server
    if kind == "TLS to a plain server":
        server = make(tls="none", auth=False)
        return server.smtp_settings(tls_type="TLS", tls_skip_verify=True)[0], server
    if kind == "STARTTLS not offered":
        server = make(tls="none", auth=False)
        return server.smtp_settings(tls_type="STARTTLS", tls_skip_verify=True)[0], server
    if kind == "AUTH refused":
        server = make(tls="starttls", auth=True)
        return server.smtp_settings(password="wrong")[0], server
    server = make(tls="none", auth=False)
    handler = server.handler
    if kind == "MAIL FROM refused":
        handler.mail_reply = "553 5.7.1 <bounces@mail.example.org>: sender not owned by user"
    elif kind == "RCPT refused":
        handler.rcpt_replies = {f"user{n}@example.com": "550 5.1.1 no such user" for n in range(5)}
    elif kind == "DATA refused":
        handler.data_replies = {f"user{n}@example.com": "554 5.7.1 spam" for n in range(5)}
    elif kind == "connection lost after DATA":
        handler.drop_after_data = {f"user{n}@example.com" for n in range(5)}
    return server.smtp_settings()[0], server


# kind -> (campaign status, {(status, reason prefix): rows}, messages the server has, pause reason)
STAGES: dict[str, tuple[str, dict[tuple[str, str], int], int, str]] = {
    "connect refused": ("paused", {}, 0, "6 send errors in a row"),
    "certificate not trusted": (
        "paused",
        {},
        0,
        "tls: TLS failed: [SSL: CERTIFICATE_VERIFY_FAILED]",
    ),
    "TLS to a plain server": ("paused", {}, 0, "tls: TLS failed"),
    "STARTTLS not offered": ("paused", {}, 0, "tls: the server does not offer STARTTLS"),
    "AUTH refused": ("paused", {}, 0, "auth: 535 5.7.8"),
    "MAIL FROM refused": ("paused", {}, 0, "mail: 553 5.7.1"),
    "RCPT refused": ("finished", {("failed", "hard_bounce: 550"): 5}, 0, ""),
    "DATA refused": ("finished", {("failed", "hard_bounce: 554"): 5}, 0, ""),
    "connection lost after DATA": ("finished", {("sent", IN_DOUBT): 5}, 5, ""),
}


@pytest.mark.parametrize("kind", list(STAGES))
def test_each_failure_stage_and_what_campaign_sends_says(
    session_maker: sessionmaker[Session], smtp_server: MakeServer, kind: str
) -> None:
    status, rows, delivered, reason = STAGES[kind]
    entry, server = _broken(kind, smtp_server)
    config = SendingConfig.from_settings(
        {
            "smtp": [entry],
            "sending.bounce_address": "bounces@mail.example.org",
            # More than the five messages: only errors that keep coming pause the campaign.
            "app.max_send_errors": 6,
            "app.batch_size": 2,
            "app.concurrency": 1,
        }
    )
    world = make_world(session_maker, count=5)
    start(world, config)
    pool = SmtpPool(config.smtp)
    paths = return_path_for(config, None)
    runner = CampaignRunner(session_maker, pool, config, record_bounce, paths, sleep=lambda _: None)
    report = runner.run(world.campaign_id)
    # Whatever happened, a second run sends nothing twice.
    if status == "finished":
        with session_maker() as session, session.begin():
            campaign = session.get(Campaign, world.campaign_id)
            assert campaign is not None
            campaign.status = "running"
        runner.run(world.campaign_id)
    pool.close()

    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        found = [(row.status, row.reason) for row in session.scalars(select(CampaignSend))]
        stats = campaign_stats(session, world.campaign_id)
        bounces = session.scalars(select(Bounce)).all()
    assert campaign.status == status, report
    assert len(found) == sum(rows.values())
    for (row_status, reason_start), count in rows.items():
        assert sum(1 for s, r in found if s == row_status and r.startswith(reason_start)) == count
    assert reason in campaign.pause_reason and (not reason) == (not campaign.pause_reason)
    # Nothing that failed before the end of the data counts as sent.
    assert campaign.sent == stats["sent"] == 0
    if server is not None:
        assert len(server.handler.messages) == delivered
        assert len(server.handler.recipients()) == len(set(server.handler.recipients()))
    # Refusals of the recipient or the message are bounces; nothing else is.
    assert len(bounces) == (5 if kind in ("RCPT refused", "DATA refused") else 0)
    if status == "paused":
        assert campaign.send_errors >= 1 and campaign.last_errors


def test_an_smtp_test_reports_the_servers_answer_or_its_failure(
    smtp_server: MakeServer, client: TestClient
) -> None:
    server = smtp_server(tls="starttls", auth=True)
    good = {**server.smtp_settings(email_headers=[{"Return-Path": BOUNCE_INBOX}])[0]}
    answer = client.post("/api/settings/smtp/test", json={**good, "email": "me@example.net"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "sent": True,
        "outcome": "sent",
        "stage": "data",
        "code": 250,
        "message": "2.0.0 queued",
        "mail_from": BOUNCE_INBOX,
        "to": "me@example.net",
    }
    (captured,) = server.handler.messages
    assert captured.rcpt_tos == ["me@example.net"] and captured.mail_from == BOUNCE_INBOX
    assert captured.message["Subject"] == "stmails: SMTP test"
    assert "Return-Path" not in captured.message

    failed = client.post(
        "/api/settings/smtp/test", json={**good, "password": "wrong", "email": "me@example.net"}
    )
    assert failed.status_code == 422
    assert failed.json()["message"].startswith("the SMTP test failed at auth: 535 5.7.8")
    assert failed.json()["data"]["stage"] == "auth"
    assert len(server.handler.messages) == 1


def test_the_smtp_test_uses_the_stored_password_only_for_the_same_server(
    smtp_server: MakeServer, client: TestClient
) -> None:
    server = smtp_server(tls="starttls", auth=True)
    assert client.put("/api/settings", json={"smtp": server.smtp_settings()}).status_code == 200
    (read,) = client.get("/api/settings").json()["data"]["smtp"]
    assert read["password"] == "••••••••"
    same = client.post("/api/settings/smtp/test", json={**read, "email": "me@example.net"})
    assert same.status_code == 200, same.text
    # Someone who may change settings points the test at a server of their own (finding M2):
    # the stored password is not sent there; the test is refused before connecting.
    theirs = smtp_server(tls="starttls", auth=True)
    elsewhere = {**read, "port": theirs.port, "email": "me@example.net"}
    refused = client.post("/api/settings/smtp/test", json=elsewhere)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("smtp.password: required")
    assert theirs.handler.credentials_tried == [] and theirs.handler.messages == []
    assert server.handler.credentials_tried[-1][1] == server.defaults["password"]


def test_campaign_test_sends_and_transactional_mail_follow_the_same_return_path_rule(
    smtp_server: MakeServer, client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    # (The server fixture first: it then stops after the app closed its SMTP connections.)
    server = smtp_server(tls="starttls", auth=True)
    settings: dict[str, Any] = {
        "smtp": server.smtp_settings(email_headers=[{"Return-Path": BOUNCE_INBOX}]),
        "sending.bounce_address": "ignored@other.example.org",
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    world = make_world(session_maker, count=2)
    sent = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user0@example.com"]}
    )
    assert sent.status_code == 200, sent.text
    template = client.post(
        "/api/templates",
        json={"name": "tx", "type": "tx", "subject": "Hi", "body": "<p>code {{ .Tx.Data.c }}</p>"},
    ).json()["data"]
    plain = {"template_id": template["id"], "subscriber_email": "user1@example.com"}
    assert client.post("/api/tx", json=plain).status_code == 200
    # The message's own Return-Path comes first (listmonk's message headers).
    own = {**plain, "headers": [{"Return-Path": "tx-bounces@mail.example.org"}]}
    assert client.post("/api/tx", json=own).status_code == 200
    froms = [(c.rcpt_tos[0], c.mail_from) for c in server.handler.messages]
    assert froms == [
        ("user0@example.com", BOUNCE_INBOX),
        ("user1@example.com", BOUNCE_INBOX),
        ("user1@example.com", "tx-bounces@mail.example.org"),
    ]
    assert all("Return-Path" not in c.message for c in server.handler.messages)
