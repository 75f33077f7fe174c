"""The most clicked links of campaigns (listmonk's `/api/campaigns/analytics/links`), counted per
click and per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from stmails.db.models import Link, LinkClick
from stmails.services import campaign_records as campaign_service
from stmails.services import lists as list_service
from stmails.services import subscribers as subscriber_service
from stmails.services.analytics.listmonk import link_counts


def test_link_counts_per_click_and_per_person(session: Session) -> None:
    mlist = list_service.create(session, name="L")
    campaign = campaign_service.create(session, name="C", subject="S", list_ids=[mlist.id])
    ada = subscriber_service.create(session, email="ada@example.com")
    bob = subscriber_service.create(session, email="bob@example.com")
    popular = Link(campaign_id=campaign.id, url="https://example.com/a")
    other = Link(campaign_id=campaign.id, url="https://example.com/b")
    session.add_all([popular, other])
    session.flush()
    now = datetime.now(UTC)
    for link, subscriber, machine in (
        (popular, ada, ""),
        (popular, ada, ""),
        (popular, bob, ""),
        (other, bob, ""),
        (other, bob, "scanner"),
    ):
        session.add(
            LinkClick(
                campaign_id=campaign.id,
                link_id=link.id,
                subscriber_id=subscriber.id,
                machine=machine,
                created_at=now,
            )
        )
    session.flush()
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    # Every human click (the scanner's left out).
    assert link_counts(session, [campaign.id], *window, individual=False) == [
        {"url": "https://example.com/a", "count": 3},
        {"url": "https://example.com/b", "count": 1},
    ]
    # Each person once per link.
    assert link_counts(session, [campaign.id], *window, individual=True) == [
        {"url": "https://example.com/a", "count": 2},
        {"url": "https://example.com/b", "count": 1},
    ]
    assert (
        link_counts(
            session,
            [campaign.id],
            now + timedelta(hours=2),
            now + timedelta(hours=3),
            individual=False,
        )
        == []
    )
