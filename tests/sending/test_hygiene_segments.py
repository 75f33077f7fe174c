"""Campaign segments and per-segment frequency caps, end to end: the segment set through the
API, the campaign sent by the sender loop into aiosmtpd, exactly the subscribers the segment
allows receiving it, the others skipped with the reason; a cap that skips the second campaign."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    Campaign,
    CampaignList,
    CampaignSend,
    CampaignView,
    SubscriberHygiene,
)
from stmails.db.types import utcnow
from stmails.services.sending.runtime import verp_maker
from stmails.workers.sender import SenderLoop

from .conftest import Sink, make_world

NOW = utcnow()


def _hygiene(factory: sessionmaker[Session], ids: dict[str, int]) -> None:
    """user0 high risk, user1 medium and verified, user2 invalid, user3 and user4 not scored;
    user3 opened last week (engaged)."""
    with factory() as session, session.begin():
        rows = {
            "user0@example.com": ("high", "valid"),
            "user1@example.com": ("medium", "valid"),
            "user2@example.com": ("low", "invalid"),
        }
        for email, (level, result) in rows.items():
            session.add(
                SubscriberHygiene(
                    subscriber_id=ids[email],
                    risk_score={"high": 70, "medium": 30, "low": 0}[level],
                    risk_level=level,
                    scored_at=NOW,
                    verify_result=result,
                    verified_at=NOW,
                )
            )


def _send(client: TestClient, factory: sessionmaker[Session], campaign_id: int) -> None:
    started = client.put(f"/api/campaigns/{campaign_id}/status", json={"status": "running"})
    assert started.status_code == 200, started.text
    loop = SenderLoop(factory, root_url="https://lists.example.org", verp=verp_maker(b"k"))
    assert loop.run_once() == 1
    loop.close()


def _reasons(factory: sessionmaker[Session], campaign_id: int) -> dict[int, str]:
    with factory() as session:
        rows = session.execute(
            select(CampaignSend.subscriber_id, CampaignSend.status, CampaignSend.reason).where(
                CampaignSend.campaign_id == campaign_id
            )
        )
        return {sid: reason if status == "skipped" else status for sid, status, reason in rows}


def test_a_segment_narrows_the_lists_and_a_cap_skips_the_next_campaign(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    world = make_world(session_maker, count=5)
    ids = world.subscriber_ids
    _hygiene(session_maker, ids)
    settings = {"smtp": smtp_sink.smtp_settings()}
    assert client.put("/api/settings", json=settings).status_code == 200

    bad = client.put(f"/api/campaigns/{world.campaign_id}/segment", json={"risk_levels": ["scary"]})
    assert bad.status_code == 400 and "risk_levels" in bad.json()["message"]
    segment = {"risk_levels": ["low", "medium"], "verify_results": ["valid", "unverified"]}
    put = client.put(f"/api/campaigns/{world.campaign_id}/segment", json=segment)
    assert put.status_code == 200, put.text
    got = client.get(f"/api/campaigns/{world.campaign_id}/segment").json()["data"]
    assert got == {**segment, "engagement_levels": []}

    _send(client, session_maker, world.campaign_id)
    assert sorted(smtp_sink.handler.recipients()) == [
        "user1@example.com",
        "user3@example.com",
        "user4@example.com",
    ]
    reasons = _reasons(session_maker, world.campaign_id)
    assert reasons[ids["user0@example.com"]] == "segment:risk_level:high"
    assert reasons[ids["user2@example.com"]] == "segment:verify_result:invalid"
    assert reasons[ids["user1@example.com"]] == "sent"

    # Medium-risk subscribers get at most one campaign a week; engaged ones only, next time.
    caps = {"hygiene.segment_caps": {"risk:medium": {"max": 1, "days": 7}}}
    assert client.put("/api/settings", json=caps).status_code == 200
    with session_maker() as session, session.begin():
        second = Campaign(
            name="Second",
            subject="Second",
            from_email="News <news@sender.example>",
            body="<p>More</p>",
            content_type="html",
        )
        session.add(second)
        session.flush()
        session.add(CampaignList(campaign_id=second.id, list_id=world.list_id, list_name="News"))
        session.add(
            CampaignView(
                campaign_id=world.campaign_id,
                subscriber_id=ids["user3@example.com"],
                created_at=NOW - timedelta(days=2),
            )
        )
        second_id = second.id
    engaged = {"engagement_levels": ["engaged", "never"]}
    assert client.put(f"/api/campaigns/{second_id}/segment", json=engaged).status_code == 200
    smtp_sink.handler.messages.clear()
    _send(client, session_maker, second_id)
    reasons = _reasons(session_maker, second_id)
    assert reasons[ids["user1@example.com"]] == "frequency_cap:risk:medium"
    assert reasons[ids["user3@example.com"]] == "sent"
    # Everyone else never engaged: `never` is allowed.
    assert sorted(smtp_sink.handler.recipients()) == [
        "user0@example.com",
        "user2@example.com",
        "user3@example.com",
        "user4@example.com",
    ]
