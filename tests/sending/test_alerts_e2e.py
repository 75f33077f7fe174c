"""Automatic pausing end to end: a campaign sent through a real SMTP server (aiosmtpd) by a
sender in a process of its own, while bounces of the delivered messages arrive through the
bounce webhook of the application in this process, as an ESP would send them. The watcher
must pause the campaign within 2 s or 200 messages of the moment the bounce rate crossed the
critical threshold, hold the scheduled campaigns, and say why through the API."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Campaign, CampaignList, Subscriber, SubscriberList
from stmails.workers.sender import SenderLoop

from .conftest import Captured, Sink, World, make_world

SENDER_PROCESS = Path(__file__).with_name("sender_process.py")
RECIPIENTS = 1500
# From this message on, every BAD_EVERY-th recipient bounces: 12.5 %, so the window's rate
# crosses 5 % around the 670th message.
CLEAN_START = 400
BAD_EVERY = 8
# Concurrent webhook deliveries, as an ESP makes them.
POSTERS = 4


@dataclass
class Timeline:
    """What the outside world saw, in order: messages accepted and bounces acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[tuple[float, str, str]] = field(default_factory=list)

    def add(self, kind: str, address: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), kind, address))


def crossing(timeline: Timeline, window: int, minimum: int, critical: float) -> int | None:
    """The index of the event at which the rate over the last `window` accepted messages
    (with their bounces acknowledged so far) first reached `critical` %."""
    accepted: list[str] = []
    bounced: set[str] = set()
    for index, (_, kind, address) in enumerate(timeline.events):
        if kind == "accept":
            accepted.append(address)
        else:
            bounced.add(address)
        last = accepted[-window:]
        if len(last) >= minimum and 100 * sum(a in bounced for a in last) / len(last) >= critical:
            return index
    return None


def test_critical_bounce_rate_pauses_the_campaign_within_200_messages(
    client: TestClient, smtp_sink: Sink, db_url: str, session_maker: sessionmaker[Session]
) -> None:
    world = make_world(session_maker, count=1)
    add_recipients(world, RECIPIENTS)
    scheduled_id = scheduled_campaign(world)
    settings = {
        "smtp": smtp_sink.smtp_settings(),
        "sending.bounce_address": "bounces@mail.example.org",
        "app.concurrency": 4,
        "app.batch_size": 500,
        # A pace at which the ESP's reports keep up on either database (as they would).
        "app.message_rate": 300.0,
        "app.notify_emails": [],
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    started = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    campaign_uuid = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]["uuid"]

    timeline = Timeline()
    to_bounce: queue.Queue[str | None] = queue.Queue()
    count = [0]

    def on_accept(message: Captured) -> None:
        address = message.rcpt_tos[0].lower()
        timeline.add("accept", address)
        count[0] += 1
        if count[0] > CLEAN_START and count[0] % BAD_EVERY == 0:
            to_bounce.put(address)

    smtp_sink.handler.on_accept = on_accept
    failures: list[str] = []

    def post_bounces() -> None:
        # An ESP reporting each bounce as it happens, through the bounce webhook.
        while (address := to_bounce.get()) is not None:
            answer = client.post(
                "/webhooks/bounce",
                json={
                    "email": address,
                    "campaign_uuid": campaign_uuid,
                    "type": "hard",
                    "source": "esp",
                    "reason": "nouser",
                    "status": "5.1.1",
                },
            )
            if answer.status_code != 200:
                failures.append(answer.text)
            timeline.add("bounce", address)

    posters = [threading.Thread(target=post_bounces) for _ in range(POSTERS)]
    for poster in posters:
        poster.start()
    sender_settings = {**settings, "smtp": smtp_sink.smtp_settings()}
    src = str(Path(__file__).resolve().parents[2] / "src")
    process = subprocess.run(
        [sys.executable, str(SENDER_PROCESS), db_url, str(world.campaign_id)],
        input=json.dumps(sender_settings).encode(),
        env={**os.environ, "PYTHONPATH": src},
        timeout=300,
        check=False,
    )
    for _ in posters:
        to_bounce.put(None)
    for poster in posters:
        poster.join(60)
    assert process.returncode == 0 and not failures

    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert campaign["status"] == "paused", campaign["status"]
    assert "bounce rate" in campaign["pause_reason"]
    figures = campaign["alert_figures"]
    assert figures["kind"] == "bounce_rate" and figures["bounce_rate"] >= 5.0
    assert figures["sends"] >= 100 and figures["thresholds"]["bounce_critical"] == 5.0

    # The moment the stored figures crossed 5 % in the world's view, and what was sent after.
    cross = crossing(timeline, window=1000, minimum=100, critical=5.0)
    assert cross is not None
    crossed_at = timeline.events[cross][0]
    after = [t for t, kind, _ in timeline.events[cross + 1 :] if kind == "accept"]
    delivered = sum(1 for _, kind, _ in timeline.events if kind == "accept")
    assert delivered < RECIPIENTS, "the campaign was not stopped"
    assert len(after) <= 200, f"{len(after)} messages sent after the crossing"
    assert not after or after[-1] - crossed_at <= 2.0, f"{after[-1] - crossed_at:.2f} s"

    alerts = client.get(
        "/api/alerts", params={"level": "critical", "campaign_id": world.campaign_id}
    ).json()["data"]
    assert alerts["total"] == 1
    alert = alerts["results"][0]
    assert alert["kind"] == "bounce_rate" and alert["id"] == figures["alert_id"]
    assert alert["actions"] == {"paused": [world.campaign_id], "held_scheduled": [scheduled_id]}
    held = client.get(f"/api/campaigns/{scheduled_id}").json()["data"]
    assert held["status"] == "paused" and f"held by alert {alert['id']}" in held["pause_reason"]
    # A held campaign goes back to its schedule.
    back = client.put(f"/api/campaigns/{scheduled_id}/status", json={"status": "scheduled"})
    assert back.status_code == 200, back.text
    assert back.json()["data"]["status"] == "scheduled"


def add_recipients(world: World, count: int) -> None:
    with world.factory() as session, session.begin():
        for number in range(1, count):
            subscriber = Subscriber(email=f"r{number:05d}@example.net", name=f"R {number}")
            session.add(subscriber)
            session.flush()
            session.add(
                SubscriberList(
                    subscriber_id=subscriber.id, list_id=world.list_id, status="confirmed"
                )
            )


def scheduled_campaign(world: World) -> int:
    with world.factory() as session, session.begin():
        campaign = Campaign(
            name="Next week",
            subject="Soon",
            from_email="News <news@sender.example>",
            body="<p>Soon</p>",
            content_type="html",
            status="scheduled",
            send_at=datetime.now(UTC) + timedelta(days=7),
        )
        session.add(campaign)
        session.flush()
        session.add(CampaignList(campaign_id=campaign.id, list_id=world.list_id, list_name="News"))
        return int(campaign.id)


def test_a_domain_over_its_rate_is_deferred_then_sent_once_released(
    client: TestClient, smtp_sink: Sink, session_maker: sessionmaker[Session]
) -> None:
    world = make_world(session_maker, count=1)
    with world.factory() as session, session.begin():
        for number in range(1, 400):
            # Every fifth recipient is at a domain whose addresses are all gone.
            domain = "stale.example" if number % 5 == 0 else "example.net"
            subscriber = Subscriber(email=f"r{number:05d}@{domain}", name=f"R {number}")
            session.add(subscriber)
            session.flush()
            session.add(
                SubscriberList(
                    subscriber_id=subscriber.id, list_id=world.list_id, status="confirmed"
                )
            )
    settings = {
        "smtp": smtp_sink.smtp_settings(),
        "sending.bounce_address": "bounces@mail.example.org",
        "app.concurrency": 2,
        "app.batch_size": 20,
        # The campaign as a whole stays under its thresholds; one domain does not.
        "deliverability.alerts": {
            "bounce_warning": 40,
            "bounce_critical": 50,
            "domain_min_sample": 10,
        },
    }
    assert client.put("/api/settings", json=settings).status_code == 200
    assert (
        client.put(
            f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"}
        ).status_code
        == 200
    )
    campaign_uuid = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]["uuid"]
    to_bounce: queue.Queue[str | None] = queue.Queue()

    def on_accept(message: Captured) -> None:
        address = message.rcpt_tos[0].lower()
        if address.endswith("@stale.example"):
            to_bounce.put(address)

    def post_bounces() -> None:
        while (address := to_bounce.get()) is not None:
            client.post(
                "/webhooks/bounce",
                json={
                    "email": address,
                    "campaign_uuid": campaign_uuid,
                    "type": "hard",
                    "source": "esp",
                },
            )

    smtp_sink.handler.on_accept = on_accept
    poster = threading.Thread(target=post_bounces)
    poster.start()
    loop = SenderLoop(world.factory, root_url="https://lists.example.org", poll_seconds=0)
    try:
        loop.run_once()
    finally:
        to_bounce.put(None)
        poster.join(60)
    stale_sent = {r for r in smtp_sink.handler.recipients() if r.endswith("@stale.example")}
    assert 10 <= len(stale_sent) < 79, len(stale_sent)
    # Everyone else got it; the held domain's other messages wait, and the campaign says so.
    others = {r for r in smtp_sink.handler.recipients() if r.endswith("@example.net")}
    assert len(others) == 320
    campaign = client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]
    assert campaign["status"] == "paused"
    assert campaign["pause_reason"].startswith("waiting for held domains: stale.example")
    [alert] = client.get("/api/alerts", params={"campaign_id": world.campaign_id}).json()["data"][
        "results"
    ]
    assert alert["kind"] == "domain_bounce_rate" and alert["domain"] == "stale.example"
    assert alert["figures"]["bounce_rate"] > 10
    # The admin releases the domain and resumes: the held messages go out, once each.
    smtp_sink.handler.on_accept = None
    released = client.put(f"/api/alerts/{alert['id']}", json={"release_domain": True})
    assert released.status_code == 200, released.text
    resumed = client.put(f"/api/campaigns/{world.campaign_id}/status", json={"status": "running"})
    assert resumed.status_code == 200, resumed.text
    loop.run_once()
    loop.close()
    everyone = smtp_sink.handler.recipients()
    assert len(everyone) == len(set(everyone)) == 400
    assert client.get(f"/api/campaigns/{world.campaign_id}").json()["data"]["status"] == "finished"
