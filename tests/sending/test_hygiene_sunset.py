"""The sunset policy over a generated history with known answers, end to end: the dry run
through the API, the scheduler's job sending the re-engagement series through the real
sending path into an aiosmtpd server, the transitions with their reasons, machine opens not
counting, the action on non-responders, and undo through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    Campaign,
    CampaignView,
    HygieneTransition,
    MailingList,
    Subscriber,
    SubscriberHygiene,
    SubscriberList,
    Template,
)
from stmails.db.types import utcnow
from stmails.services import settings as settings_service
from stmails.services import suppression
from stmails.services.hygiene import sunset
from stmails.workers.hygiene_jobs import ReengagementMailer, sunset_job
from stmails.workers.scheduler import SchedulerLoop

from .conftest import Sink

NOW = utcnow()


def _world(factory: sessionmaker[Session]) -> dict[str, int]:
    """Five subscribers on one list; returns their ids by name."""
    ids = {}
    with factory() as session, session.begin():
        news = MailingList(name="News", optin="single")
        camp = Campaign(name="Old news", subject="Old news")
        template = Template(
            name="We miss you",
            type="tx",
            subject="Still interested, {{ .Subscriber.FirstName }}?",
            body='<p>Click to stay: <a href="https://example.org/stay">yes</a></p>',
        )
        session.add_all([news, camp, template])
        session.flush()
        people = {
            # name: (days on the list, days since a person's open or None, machine opens)
            "engaged": (300, 10, False),
            "idle": (300, 100, False),
            "machine": (300, 200, True),
            "never": (400, None, False),
            "new": (20, None, False),
        }
        for name, (joined, opened, machine) in people.items():
            sub = Subscriber(
                email=f"{name}@example.net",
                name=name.title(),
                created_at=NOW - timedelta(days=joined),
            )
            session.add(sub)
            session.flush()
            session.add(SubscriberList(subscriber_id=sub.id, list_id=news.id, status="confirmed"))
            if opened is not None:
                session.add(
                    CampaignView(
                        campaign_id=camp.id,
                        subscriber_id=sub.id,
                        created_at=NOW - timedelta(days=opened),
                    )
                )
            if machine:
                # An image proxy fetched the pixel yesterday: not a person.
                session.add(
                    CampaignView(
                        campaign_id=camp.id,
                        subscriber_id=sub.id,
                        machine="apple_mpp",
                        created_at=NOW - timedelta(days=1),
                    )
                )
            ids[name] = sub.id
        ids["template"] = template.id
        ids["campaign"] = camp.id
    return ids


def _states(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as session:
        rows = session.execute(
            select(Subscriber.name, SubscriberHygiene.state).outerjoin(
                SubscriberHygiene, SubscriberHygiene.subscriber_id == Subscriber.id
            )
        )
        return {name.lower(): state or "active" for name, state in rows}


def test_the_sunset_policy_end_to_end(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    ids = _world(session_maker)
    policy = {
        "enabled": False,
        "template_id": ids["template"],
        "mails": 2,
        "spacing_days": 7,
        "action": "unsubscribe",
    }
    settings = {"smtp": smtp_sink.smtp_settings(), "hygiene.sunset": policy}
    assert client.put("/api/settings", json=settings).status_code == 200

    # The dry run, while the policy is off: who would move and why; nothing written.
    preview = client.get("/api/hygiene/sunset/preview")
    assert preview.status_code == 200, preview.text
    dry = preview.json()["data"]
    assert dry["enabled"] is False
    moves = {m["email"]: m for m in dry["moves"]}
    assert set(moves) == {"idle@example.net", "machine@example.net", "never@example.net"}
    assert all(m["to_state"] == "reengaging" for m in moves.values())
    idle_day = (NOW - timedelta(days=100)).date().isoformat()
    assert moves["idle@example.net"]["reason"] == (
        f"last open or click by a person {idle_day}; 100 days without engagement (over 90)"
    )
    assert moves["never@example.net"]["reason"].startswith("never opened or clicked; 400 days")
    assert dry["counts"] == {"reengaging": 3}

    # Off until enabled: the scheduler's job does not run.
    mailer = ReengagementMailer("https://lists.example.org", b"test-secret-key")
    loop = SchedulerLoop(session_maker, jobs=[sunset_job(mailer)], holder="test")
    assert loop.run_once() == []
    assert _states(session_maker) == dict.fromkeys(
        ["engaged", "idle", "machine", "never", "new"], "active"
    )
    assert smtp_sink.handler.messages == []

    policy["enabled"] = True
    assert client.put("/api/settings", json={"hygiene.sunset": policy}).status_code == 200
    assert loop.run_once() == ["sunset"]
    # The scheduler's run is visible to the admin.
    runs = client.get("/api/hygiene/scheduler").json()["data"]
    assert runs["sunset"]["ok"] is True
    assert runs["sunset"]["result"] == {"moved": {"reengaging": 3}, "mailed": 3, "refused": 0}
    assert runs["_lease"]["holder"] == "test"
    states = _states(session_maker)
    assert states == {
        "engaged": "active",
        "idle": "reengaging",
        "machine": "reengaging",
        "never": "reengaging",
        "new": "active",
    }
    # The first mail of the series went out through the sending path, DKIM/unsubscribe and all.
    assert sorted(smtp_sink.handler.recipients()) == [
        "idle@example.net",
        "machine@example.net",
        "never@example.net",
    ]
    message = smtp_sink.handler.messages[0].message
    assert message["Subject"].startswith("Still interested")
    assert message["List-Unsubscribe"]

    def run_at(days: float) -> sunset.RunReport:
        with session_maker() as session, session.begin():
            return sunset.run(session, mailer, now=NOW + timedelta(days=days))

    assert run_at(3).to_dict() == {"moved": {}, "mailed": 0, "refused": 0}
    # A week later, the second mail; one address was suppressed meanwhile: refused, not sent.
    with session_maker() as session, session.begin():
        suppression.add(session, reason="manual", email="never@example.net", source="test")
    assert run_at(7.1).to_dict() == {"moved": {}, "mailed": 2, "refused": 1}
    assert len(smtp_sink.handler.messages) == 5
    # `idle` opens a re-engagement mail (a person); `machine` only has its proxy fetch again.
    with session_maker() as session, session.begin():
        at = NOW + timedelta(days=8)
        session.add_all(
            [
                CampaignView(campaign_id=ids["campaign"], subscriber_id=ids["idle"], created_at=at),
                CampaignView(
                    campaign_id=ids["campaign"],
                    subscriber_id=ids["machine"],
                    machine="apple_mpp",
                    created_at=at,
                ),
            ]
        )
    # Day 14: the series is over. `idle` re-engaged; `machine` (200 + 14 days) and `never`
    # (400 + 14) are sunset and unsubscribed; `engaged` and `new` stay active.
    assert run_at(14.2).to_dict() == {
        "moved": {"reengaged": 1, "sunset": 2},
        "mailed": 0,
        "refused": 0,
    }
    assert _states(session_maker) == {
        "engaged": "active",
        "idle": "reengaged",
        "machine": "sunset",
        "never": "sunset",
        "new": "active",
    }
    with session_maker() as session:
        statuses = dict(
            session.execute(select(SubscriberList.subscriber_id, SubscriberList.status)).all()
        )
    assert statuses[ids["machine"]] == statuses[ids["never"]] == "unsubscribed"
    assert statuses[ids["idle"]] == statuses[ids["engaged"]] == "confirmed"

    # Every transition is listed with its reason.
    listed = client.get("/api/hygiene/transitions", params={"per_page": 50}).json()["data"]
    assert listed["total"] == 6
    sunsets = {t["email"]: t for t in listed["results"] if t["to_state"] == "sunset"}
    never = sunsets["never@example.net"]
    assert never["action"] == "unsubscribe" and never["actor"] == "scheduler"
    assert "414 days without engagement (over 180)" in never["reason"]
    assert "no response to the re-engagement series (2 mails" in never["reason"]
    machine = sunsets["machine@example.net"]
    assert machine["reason"].startswith("last open or click by a person ")

    # Undo restores the subscriptions and the state, and is recorded; twice is refused.
    undone = client.post(f"/api/hygiene/transitions/{never['id']}/undo", json={})
    assert undone.status_code == 200, undone.text
    assert undone.json()["data"]["to_state"] == "reengaging"
    assert undone.json()["data"]["action"] == "undo"
    again = client.post(f"/api/hygiene/transitions/{never['id']}/undo", json={})
    assert again.status_code == 409
    with session_maker() as session:
        membership = session.get(SubscriberList, (ids["never"], statuses_list(session)))
        assert membership is not None and membership.status == "confirmed"
        stored = session.get(HygieneTransition, never["id"])
        assert stored is not None and stored.undone_at is not None
    assert _states(session_maker)["never"] == "reengaging"
    mailer.close()


def statuses_list(session: Session) -> int:
    found = session.scalar(select(MailingList.id))
    assert found is not None
    return int(found)


def test_a_policy_that_cannot_work_is_refused_when_saved(client: TestClient) -> None:
    refused = client.put("/api/settings", json={"hygiene.sunset": {"enabled": True}})
    assert refused.status_code == 400
    assert "hygiene.sunset.template_id" in refused.json()["message"]
    bad = client.put(
        "/api/settings",
        json={"hygiene.sunset": {"reengage_after_days": 200, "sunset_after_days": 180}},
    )
    assert bad.status_code == 400 and "sunset_after_days" in bad.json()["message"]
    missing = client.put(
        "/api/settings", json={"hygiene.sunset": {"enabled": True, "template_id": 999}}
    )
    assert missing.status_code == 400
    assert "no transactional template 999" in missing.json()["message"]
    probe = client.put(
        "/api/settings", json={"hygiene.reverify": {"enabled": True, "smtp_probe": True}}
    )
    assert probe.status_code == 400 and "sending.bounce_address" in probe.json()["message"]


@pytest.mark.parametrize("action", ["suppress", "tag"])
def test_the_other_actions_and_their_undo(
    session_maker: sessionmaker[Session], action: str
) -> None:
    with session_maker() as session, session.begin():
        news = MailingList(name="News", optin="single")
        sub = Subscriber(email="gone@example.net", name="x", created_at=NOW - timedelta(days=400))
        # Unsubscribed from everything: never re-engaged, whatever its inactivity.
        left = Subscriber(email="left@example.net", name="y", created_at=NOW - timedelta(days=400))
        session.add_all([news, sub, left])
        session.flush()
        session.add(SubscriberList(subscriber_id=sub.id, list_id=news.id, status="unconfirmed"))
        session.add(SubscriberList(subscriber_id=left.id, list_id=news.id, status="unsubscribed"))
        sub_id = sub.id
        settings_service.update(
            session,
            {"hygiene.sunset": {"enabled": True, "mails": 0, "action": action}},
        )
    with session_maker() as session, session.begin():
        assert sunset.run(session, None, now=NOW).moved == {"reengaging": 1}
    with session_maker() as session, session.begin():
        report = sunset.run(session, None, now=NOW + timedelta(days=8))
        assert report.moved == {"sunset": 1}
    with session_maker() as session:
        hit = suppression.find(session, "gone@example.net", list_ids=[])
        assert (hit is not None) == (action == "suppress")
        last = session.scalar(select(HygieneTransition).order_by(HygieneTransition.id.desc()))
        assert last is not None and last.action == action
        last_id = last.id
    with session_maker() as session, session.begin():
        sunset.undo(session, last_id, actor="admin")
    with session_maker() as session:
        assert suppression.find(session, "gone@example.net", list_ids=[]) is None
        row = session.get(SubscriberHygiene, sub_id)
        assert row is not None and row.state == "reengaging"
