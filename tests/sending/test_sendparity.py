"""listmonk's sending settings that route and pace mail: `from_addresses` and named SMTP servers
as messengers (`email-<name>`), `msg_retry_delay`, and the sliding window. Every message goes
through real aiosmtpd servers (one with STARTTLS and AUTH) and is read back there."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, CampaignSend
from stmails.db.types import utcnow
from stmails.services.bounces import record as record_bounce
from stmails.services.errors import InvalidInput
from stmails.services.sending.campaigns import CampaignRunner
from stmails.services.sending.config import SendingConfig, validate_setting
from stmails.services.sending.messages import Message
from stmails.services.sending.multiplex import send_all
from stmails.services.sending.routing import (
    RoutedPools,
    check_messenger,
    messengers,
    servers_for,
)
from stmails.services.sending.smtp import SmtpPool, SmtpServer
from stmails.workers.sender import SenderLoop, return_path_for

from .conftest import MakeServer, Sink, make_world, start

TEMPLATE = {"name": "Receipt", "type": "tx", "subject": "Receipt", "body": "<p>Thanks</p>"}


def _two_servers(smtp_server: MakeServer) -> tuple[Sink, Sink, list[dict[str, Any]]]:
    """`brand` (STARTTLS + AUTH) takes news@sender.example; the other takes the rest."""
    brand = smtp_server(tls="starttls", auth=True)
    rest = smtp_server(tls="none", auth=False)
    smtp = brand.smtp_settings(
        name="brand", from_addresses=["News <NEWS@sender.example>"]
    ) + rest.smtp_settings(name="")
    return brand, rest, smtp


# -- validation -------------------------------------------------------------------------------


def test_routing_settings_are_checked_when_saved(client: TestClient, smtp_sink: Sink) -> None:
    one = smtp_sink.smtp_settings(name="a", from_addresses=["x@sender.example"])[0]
    two = {**one, "name": "b", "from_addresses": ["y@sender.example", "X@Sender.example"]}
    refused = client.put("/api/settings", json={"smtp": [one, two]})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("smtp[1].from_addresses[1]: x@sender.example")
    same_name = client.put("/api/settings", json={"smtp": [one, {**two, "from_addresses": []}]})
    assert same_name.status_code == 200, same_name.text
    for other in ("a", "A", "email-a"):
        clash = client.put(
            "/api/settings", json={"smtp": [one, {**one, "name": other, "from_addresses": []}]}
        )
        assert clash.status_code == 400 and clash.json()["message"].startswith("smtp[1].name")
    domain = {**two, "from_addresses": ["Sender.Example."]}
    assert client.put("/api/settings", json={"smtp": [one, domain]}).status_code == 200
    bad = client.put("/api/settings", json={"smtp": [{**one, "from_addresses": ["x@"]}]})
    assert bad.status_code == 400 and bad.json()["message"].startswith("smtp[0].from_addresses[0]")
    # Stored as bare lower-case addresses; the messengers are announced.
    stored = validate_setting(
        "smtp", [{**one, "from_addresses": ["X <X@Sender.Example>", "Sender.Example"]}]
    )
    assert stored[0]["from_addresses"] == ["x@sender.example", "sender.example"]
    config = client.get("/api/config").json()["data"]
    assert config["messengers"] == ["email", "email-a", "email-b"]


def test_servers_for_routes_by_messenger_and_from_address() -> None:
    a = SmtpServer("a.example", name="a", from_addresses=("news@x.example",))
    b = SmtpServer("b.example", name="b")
    c = SmtpServer("c.example")
    d = SmtpServer("d.example", name="email-d", from_addresses=("x.example",))
    assert servers_for([a, b, c], "email", "News <NEWS@x.example>") == (a,)
    assert servers_for([a, b, c], "email", "other@x.example") == (b, c)
    # A listed domain takes the addresses there that no server lists as such.
    assert servers_for([a, b, d], "email", "other@x.example") == (d,)
    assert servers_for([a, b, d], "email", "news@x.example") == (a,)
    assert servers_for([a, b, d], "email-d", "someone@else.example") == (d,)
    assert servers_for([a, b, c], "email-a", "other@x.example") == (a,)
    assert servers_for([a, b, c], "", "other@x.example") == (b, c)
    with pytest.raises(InvalidInput, match="messenger"):
        servers_for([a, b], "email-c", "news@x.example")
    with pytest.raises(InvalidInput, match="from_email: no enabled SMTP server takes From"):
        servers_for([a], "email", "other@x.example")
    assert messengers([a, b, c]) == ["email", "email-a", "email-b"]
    # Named as listmonk names them (and as listmonk stores them: `email-...`).
    assert messengers([SmtpServer("h", name="My Relay"), d]) == [
        "email",
        "email-my-relay",
        "email-d",
    ]
    check_messenger([{"name": "a", "enabled": False}], "email-a", "messenger")
    with pytest.raises(InvalidInput, match="unknown messenger 'email-z'"):
        check_messenger([{"name": "a"}], "email-z", "messenger")


# -- campaigns, transactional mail and test sends through the routed servers ------------------


def test_campaign_tx_and_test_sends_go_through_the_routed_server(
    smtp_server: MakeServer, client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    # The servers are set up first and stopped last, after the app closed its connections.
    brand, rest, smtp = _two_servers(smtp_server)
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    world = make_world(session_maker, count=4)  # From "News <news@sender.example>"
    started = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    loop = SenderLoop(session_maker, root_url="https://lists.example.org")
    assert loop.run_once() == 1
    loop.close()
    assert sorted(brand.handler.recipients()) == [f"user{n}@example.com" for n in range(4)]
    assert brand.handler.logins and rest.handler.messages == []

    created = client.post("/api/templates", json=TEMPLATE)
    template_id = created.json()["data"]["id"]
    tx = {"subscriber_email": "user0@example.com", "template_id": template_id}
    # Another From: the server without a list.
    other = client.post("/api/tx", json={**tx, "from_email": "Shop <shop@sender.example>"})
    assert other.status_code == 200, other.text
    assert rest.handler.recipients() == ["user0@example.com"]
    # The same From through the named messenger: that server.
    named = client.post(
        "/api/tx", json={**tx, "from_email": "shop@sender.example"} | {"messenger": "email-brand"}
    )
    assert named.status_code == 200, named.text
    assert brand.handler.messages[-1].message["From"] == "shop@sender.example"
    unknown = client.post("/api/tx", json={**tx, "messenger": "email-nope"})
    assert unknown.status_code == 400
    assert unknown.json()["message"].startswith("messenger: unknown messenger 'email-nope'")

    # A campaign's test send with the listed From goes through `brand`.
    before = len(brand.handler.messages)
    test = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user1@example.com"]}
    )
    assert test.status_code == 200, test.text
    assert len(brand.handler.messages) == before + 1 and len(rest.handler.messages) == 1
    # A messenger whose server is gone: the test send is refused, naming the field.
    with session_maker() as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.messenger = "email-gone"
    refused = client.post(
        f"/api/campaigns/{world.campaign_id}/test", json={"subscribers": ["user1@example.com"]}
    )
    assert refused.status_code == 400 and refused.json()["message"].startswith("messenger:")


def test_campaign_messenger_is_checked_when_saved_and_when_started(
    smtp_server: MakeServer, client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    # The servers are set up first and stopped last, after the app closed its connections.
    brand, rest, smtp = _two_servers(smtp_server)
    smtp[0]["from_addresses"] = []
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    world = make_world(session_maker, count=2)
    url = f"/api/campaigns/{world.campaign_id}"
    wrong = client.put(url, json={"messenger": "email-nope"})
    assert wrong.status_code == 400 and wrong.json()["message"].startswith("messenger:")
    assert client.put(url, json={"messenger": "email-brand"}).status_code == 200

    # Disabled: the messenger still exists, but the campaign cannot start.
    smtp[0]["enabled"] = False
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    refused = client.put(f"{url}/status", json={"status": "running"})
    assert refused.status_code == 400 and "not an enabled SMTP server" in refused.text

    # Running, then its server is renamed away: the sender pauses it, saying why.
    smtp[0]["enabled"] = True
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    assert client.put(f"{url}/status", json={"status": "running"}).status_code == 200
    smtp[0]["name"] = "renamed"
    assert client.put("/api/settings", json={"smtp": smtp}).status_code == 200
    loop = SenderLoop(session_maker, root_url="https://lists.example.org")
    loop.run_once()
    loop.close()
    campaign = client.get(url).json()["data"]
    assert campaign["status"] == "paused"
    assert "'email-brand' is not an enabled SMTP server" in campaign["pause_reason"]
    assert brand.handler.messages == [] and rest.handler.messages == []


# -- msg_retry_delay ----------------------------------------------------------------------------


def test_msg_retry_delay_delays_the_retry_not_the_other_messages(smtp_sink: Sink) -> None:
    server = SendingConfig.from_settings(
        {"smtp": smtp_sink.smtp_settings(max_msg_retries=1, msg_retry_delay="1500ms")}
    ).smtp[0]
    assert server.msg_retry_delay == 1.5
    accepted: dict[str, float] = {}
    smtp_sink.handler.on_accept = lambda c: accepted.setdefault(c.rcpt_tos[0], time.monotonic())
    # The first MAIL FROM is dropped: that message is tried again, 1.5 s later.
    smtp_sink.handler.drop_at_mail = 1

    def message(n: int) -> Message:
        data = f"From: a@sender.example\r\nTo: r{n}@example.com\r\nSubject: {n}\r\n\r\nhi\r\n"
        return Message("a@sender.example", f"r{n}@example.com", f"<{n}@x>", data.encode())

    pool = SmtpPool([server])
    began = time.monotonic()
    results = send_all(pool, 3, message, connections=2)
    pool.close()
    assert [r.outcome if r else None for r in results] == ["sent", "sent", "sent"]
    # The retried one waited its delay; the others did not wait for it.
    _, second, retried = sorted(accepted.values())
    assert retried - began >= 1.5
    assert second - began < 1.0


# -- the sliding window -------------------------------------------------------------------------


def test_the_sliding_window_makes_the_campaign_wait_then_resume(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=5)
    config = SendingConfig.from_settings(
        {
            "smtp": smtp_sink.smtp_settings(),
            "app.batch_size": 3,
            "app.message_sliding_window": True,
            "app.message_sliding_window_duration": "1s",
            "app.message_sliding_window_rate": 2,
        }
    )
    assert (config.window_seconds, config.window_rate) == (1.0, 2)
    start(world, config)
    reasons: list[tuple[str, str]] = []

    def sleep(seconds: float) -> None:
        with session_maker() as session:
            campaign = session.get(Campaign, world.campaign_id)
            assert campaign is not None
            reasons.append((campaign.status, campaign.wait_reason))
        time.sleep(seconds)

    pool = SmtpPool(config.smtp)
    runner = CampaignRunner(
        world.factory, pool, config, record_bounce, return_path_for(config, None), sleep=sleep
    )
    report = runner.run(world.campaign_id)
    pool.close()
    assert report.finished and len(smtp_sink.handler.messages) == 5
    # It waited twice or more, running, with the reason on the campaign; cleared at the end.
    waits = [r for r in reasons if r[1]]
    assert len(waits) >= 2
    assert all(status == "running" for status, _ in waits)
    assert "the sliding window is full (2 messages per 1s)" in waits[0][1]
    with session_maker() as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None and campaign.wait_reason == ""
        stamps = sorted(session.scalars(select(CampaignSend.sent_at)))
    # Never more than 2 sends inside any 1-second window.
    for first, third in zip(stamps, stamps[2:], strict=False):
        assert (third - first).total_seconds() >= 1.0


def test_sliding_window_settings_are_validated(client: TestClient) -> None:
    for key, value in (
        ("app.message_sliding_window_duration", "0s"),
        ("app.message_sliding_window_rate", 0),
        ("app.message_sliding_window", "yes"),
    ):
        response = client.put("/api/settings", json={key: value})
        assert response.status_code == 400 and response.json()["message"].startswith(key)


def test_relayed_mail_is_routed_by_its_from_header(smtp_server: MakeServer) -> None:
    """The relay (and any mail stmails did not compose) is routed by the From in its data."""
    brand, rest, smtp = _two_servers(smtp_server)
    config = SendingConfig.from_settings({"smtp": smtp})
    pools = RoutedPools()
    send = pools.transport(config.smtp)

    def message(sender: str, n: int) -> Message:
        data = f"From: {sender}\r\nTo: r{n}@example.com\r\nSubject: {n}\r\n\r\nhi\r\n"
        return Message("bounces@sender.example", f"r{n}@example.com", f"<{n}@x>", data.encode())

    assert send(message("News <news@sender.example>", 1)).outcome == "sent"
    assert send(message("app@sender.example", 2)).outcome == "sent"
    assert brand.handler.recipients() == ["r1@example.com"]
    assert rest.handler.recipients() == ["r2@example.com"]
    # Only the listing server left: another From cannot go anywhere, and says why.
    only = SendingConfig.from_settings({"smtp": smtp[:1]})
    refused = pools.transport(only.smtp)(message("app@sender.example", 3))
    assert refused.outcome == "error" and refused.fatal
    assert "no enabled SMTP server takes From" in refused.text
    pools.close()


def test_the_window_counts_every_senders_stored_sends(
    session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    """Sends stored by another sender (another campaign, process or machine) fill the same
    window: this campaign waits until they leave it."""
    world = make_world(session_maker, count=2)
    with session_maker() as session, session.begin():
        other = Campaign(name="Other", subject="S", status="finished")
        session.add(other)
        session.flush()
        now = utcnow()
        session.add_all(
            CampaignSend(campaign_id=other.id, subscriber_id=sid, status="sent", sent_at=now)
            for sid in list(world.subscriber_ids.values())[:2]
        )
    config = SendingConfig.from_settings(
        {
            "smtp": smtp_sink.smtp_settings(),
            "app.message_sliding_window": True,
            "app.message_sliding_window_duration": "1500ms",
            "app.message_sliding_window_rate": 2,
        }
    )
    start(world, config)
    arrived: list[float] = []
    smtp_sink.handler.on_accept = lambda _: arrived.append(time.monotonic())
    began = time.monotonic()
    pool = SmtpPool(config.smtp)
    runner = CampaignRunner(
        world.factory, pool, config, record_bounce, return_path_for(config, None), sleep=time.sleep
    )
    assert runner.run(world.campaign_id).finished
    pool.close()
    assert len(arrived) == 2
    # Nothing went out before the other sender's two sends left the 1.5 s window.
    assert min(arrived) - began >= 1.2
