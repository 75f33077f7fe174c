"""listmonk's maintenance routes: deleting blocklisted or orphan subscribers, old unconfirmed
subscriptions and old opens and clicks (the figures keep their counts), and exporting those."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import (
    Campaign,
    CampaignEngagement,
    CampaignView,
    Link,
    LinkClick,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.db.types import utcnow
from stmails.services import roles, users
from stmails.services.analytics import rollups
from stmails.services.tracking.hits import Hit, record_hits

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def test_blocklisted_and_orphan_subscribers(
    lm: ListmonkClient, session_maker: sessionmaker[Session]
) -> None:
    news = lm.post("/api/lists", {"name": "News"})["id"]
    kept = lm.post("/api/subscribers", {"email": "kept@example.org", "lists": [news]})
    blocked = lm.post("/api/subscribers", {"email": "b@example.org", "lists": [news]})
    lm.put(f"/api/subscribers/{blocked['id']}/blocklist")
    lm.post("/api/subscribers", {"email": "orphan1@example.org"})
    lm.post("/api/subscribers", {"email": "orphan2@example.org"})
    assert lm.delete("/api/maintenance/subscribers/blocklisted") == {"count": 1}
    assert lm.delete("/api/maintenance/subscribers/orphan") == {"count": 2}
    assert [r["id"] for r in lm.get("/api/subscribers")["results"]] == [kept["id"]]
    assert lm.delete("/api/maintenance/subscribers/orphan") == {"count": 0}
    with pytest.raises(ListmonkError) as bad:
        lm.delete("/api/maintenance/subscribers/everyone")
    assert bad.value.status == 400


def test_old_unconfirmed_double_optin_subscriptions(
    lm: ListmonkClient, session_maker: sessionmaker[Session]
) -> None:
    double = lm.post("/api/lists", {"name": "Double", "optin": "double"})["id"]
    single = lm.post("/api/lists", {"name": "Single", "optin": "single"})["id"]
    for n in range(3):
        lm.post("/api/subscribers", {"email": f"s{n}@example.org", "lists": [double]})
    lm.post("/api/subscribers", {"email": "single@example.org", "lists": [single]})
    lm.put("/api/subscribers/lists", {"ids": [lm.get("/api/subscribers")["results"][3]["id"]],
                                      "action": "add", "target_list_ids": [single],
                                      "status": "unconfirmed"})  # fmt: skip
    old = utcnow() - timedelta(days=40)
    with session_maker() as session:
        first = session.scalars(select(SubscriberList).where(SubscriberList.list_id == double))
        for row in list(first)[:2]:
            row.created_at = old
        for row in session.scalars(select(SubscriberList).where(SubscriberList.list_id == single)):
            row.created_at = old
        session.commit()
    cutoff = (utcnow() - timedelta(days=30)).isoformat()
    answer = lm.delete("/api/maintenance/subscriptions/unconfirmed", before_date=cutoff)
    assert answer == {"count": 2}
    with session_maker() as session:
        left = session.execute(
            select(MailingList.name, func.count())
            .join(SubscriberList, SubscriberList.list_id == MailingList.id)
            .group_by(MailingList.name)
            .order_by(MailingList.name)
        ).all()
    # The single opt-in list's unconfirmed subscription is not the opt-in's leftover: it stays.
    assert [tuple(row) for row in left] == [("Double", 1), ("Single", 1)]
    with pytest.raises(ListmonkError) as bad:
        lm.delete("/api/maintenance/subscriptions/unconfirmed", before_date="last month")
    assert bad.value.status == 400


def _engagement(session_maker: sessionmaker[Session]) -> tuple[int, list[str]]:
    """A campaign with opens and clicks of three subscribers: one of them 60 days ago."""
    with session_maker() as session:
        campaign = Campaign(name="C", subject="S", status="finished")
        people = [Subscriber(email=f"p{n}@example.org", name=f"P{n}") for n in range(3)]
        session.add_all([campaign, *people])
        session.flush()
        link = Link(campaign_id=campaign.id, url="https://example.org/=x")
        session.add(link)
        session.flush()
        now = utcnow()
        hits = []
        browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        for n, person in enumerate(people):
            at = now - timedelta(days=60 if n == 0 else 1)
            hits.append(Hit("view", campaign.id, person.uuid, at, user_agent=browser))
            hits.append(Hit("click", campaign.id, person.uuid, at, link_id=link.id,
                            user_agent=browser))  # fmt: skip
        record_hits(session, hits)
        session.commit()
        result = campaign.id, [p.email for p in people]
    rollups.fold_pending(session_maker)
    return result


def test_old_opens_and_clicks_go_and_the_figures_stay(
    lm: ListmonkClient, session_maker: sessionmaker[Session]
) -> None:
    # Who opened is stored only with individual tracking on.
    lm.put("/api/settings/privacy.individual_tracking", True)
    campaign_id, emails = _engagement(session_maker)
    views_before = lm.get(f"/api/campaigns/{campaign_id}")["views"]
    assert views_before == 3
    since = (utcnow() - timedelta(days=90)).isoformat()
    export = lm.request("GET", "/api/maintenance/analytics/clicks/export", params={"since": since})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["email"] for r in rows) == sorted(emails)
    assert {r["url"] for r in rows} == {"https://example.org/=x"}
    recent = lm.request("GET", "/api/maintenance/analytics/views/export",
                        params={"since": (utcnow() - timedelta(days=30)).isoformat()})  # fmt: skip
    assert sorted(r["email"] for r in csv.DictReader(io.StringIO(recent.text))) == emails[1:]
    cutoff = (utcnow() - timedelta(days=30)).isoformat()
    assert lm.delete("/api/maintenance/analytics/views", before_date=cutoff) is True
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(CampaignView)) == 2
        assert session.scalar(select(func.count()).select_from(LinkClick)) == 3
        firsts = session.execute(
            select(CampaignEngagement.viewed_at.is_(None), CampaignEngagement.clicked_at)
        ).all()
        assert sorted(bool(row[0]) for row in firsts) == [False, False, True]
    assert lm.delete("/api/maintenance/analytics/all", before_date=cutoff) is True
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(LinkClick)) == 2
        assert session.scalar(select(func.count()).select_from(CampaignEngagement)) == 2
    # Who opened is forgotten; how many opened is not.
    assert lm.get(f"/api/campaigns/{campaign_id}")["views"] == views_before
    with pytest.raises(ListmonkError) as bad:
        lm.delete("/api/maintenance/analytics/everything", before_date=cutoff)
    assert bad.value.status == 400


def test_maintenance_needs_settings_maintain(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "admin-ish", ["settings:get", "settings:manage"])
        users.create_api_user(session, "ops", "ops-token-01234567", role=role)
        session.commit()
    ops = ListmonkClient(client, "ops", "ops-token-01234567")
    with pytest.raises(ListmonkError) as refused:
        ops.delete("/api/maintenance/subscribers/orphan")
    assert refused.value.status == 403
    assert refused.value.message == "permission denied: settings:maintain required"
