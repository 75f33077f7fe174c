"""listmonk's maintenance: deleting what an installation no longer needs, and exporting the
engagement history before it goes (`/api/maintenance/...`).

- Subscribers: every blocklisted one, or every orphan (on no list). Their bounces stay,
  detached, as when a subscriber is deleted; the suppression list is kept apart and stays.
- Unconfirmed subscriptions to double opt-in lists made before a date.
- Engagement before a date: opens (`views`), clicks (`clicks`) or both (`all`), with each
  subscriber's first open or click of a campaign recorded then. The deliverability figures
  (services.analytics rollups) keep their counts: only who opened or clicked is forgotten. A
  subscriber who opens such a campaign again afterwards counts as a first open again.

Every function returns how many rows went and leaves the commit to the caller; each runs a
handful of statements whatever the number of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

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
from stmails.services.errors import InvalidInput

log = logging.getLogger("stmails.maintenance")

SUBSCRIBER_KINDS = ("blocklisted", "orphan")
ANALYTICS_KINDS = ("all", "views", "clicks")
EXPORT_KINDS = ("views", "clicks")
VIEW_COLUMNS = [
    "campaign_id",
    "campaign_uuid",
    "campaign_name",
    "subscriber_id",
    "subscriber_uuid",
    "email",
    "subscriber_name",
    "created_at",
]
CLICK_COLUMNS = [*VIEW_COLUMNS[:-1], "url", "created_at"]


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def delete_subscribers(session: Session, kind: str) -> int:
    """Deletes every blocklisted subscriber, or every subscriber on no list (`orphan`)."""
    if kind == "blocklisted":
        condition = Subscriber.status == "blocklisted"
    elif kind == "orphan":
        condition = ~exists().where(SubscriberList.subscriber_id == Subscriber.id)
    else:
        raise InvalidInput("type", f"must be one of {', '.join(SUBSCRIBER_KINDS)}")
    count = _count(session.execute(delete(Subscriber).where(condition)))
    log.info("maintenance: deleted %d %s subscribers", count, kind)
    return count


def delete_unconfirmed_subscriptions(session: Session, before: datetime) -> int:
    """Deletes the unconfirmed subscriptions to double opt-in lists made before `before`."""
    double = select(MailingList.id).where(MailingList.optin == "double")
    count = _count(
        session.execute(
            delete(SubscriberList).where(
                SubscriberList.status == "unconfirmed",
                SubscriberList.list_id.in_(double),
                SubscriberList.created_at < before,
            )
        )
    )
    log.info("maintenance: deleted %d unconfirmed subscriptions before %s", count, before)
    return count


def delete_engagement(session: Session, kind: str, before: datetime) -> int:
    """Deletes the opens (`views`), clicks (`clicks`) or both (`all`) recorded before
    `before`, and forgets the first opens and clicks of that time."""
    if kind not in ANALYTICS_KINDS:
        raise InvalidInput("type", f"must be one of {', '.join(ANALYTICS_KINDS)}")
    count = 0
    if kind in ("all", "views"):
        count += _count(
            session.execute(delete(CampaignView).where(CampaignView.created_at < before))
        )
        session.execute(
            update(CampaignEngagement)
            .where(CampaignEngagement.viewed_at < before)
            .values(viewed_at=None)
        )
    if kind in ("all", "clicks"):
        count += _count(session.execute(delete(LinkClick).where(LinkClick.created_at < before)))
        session.execute(
            update(CampaignEngagement)
            .where(CampaignEngagement.clicked_at < before)
            .values(clicked_at=None)
        )
    session.execute(
        delete(CampaignEngagement).where(
            CampaignEngagement.viewed_at.is_(None), CampaignEngagement.clicked_at.is_(None)
        )
    )
    log.info("maintenance: deleted %d %s rows before %s", count, kind, before)
    return count


def engagement_batch(
    session: Session, kind: str, since: datetime, after_id: int, limit: int
) -> tuple[int, list[Sequence[Any]]]:
    """One batch of the opens or clicks recorded since `since`, in id order after `after_id`:
    (the last id read, rows of VIEW_COLUMNS or CLICK_COLUMNS). The last id is `after_id` when
    the batch is empty."""
    if kind not in EXPORT_KINDS:
        raise InvalidInput("type", f"must be one of {', '.join(EXPORT_KINDS)}")
    table: Any = CampaignView if kind == "views" else LinkClick
    columns: list[Any] = [
        table.id,
        Campaign.id,
        Campaign.uuid,
        Campaign.name,
        Subscriber.id,
        Subscriber.uuid,
        Subscriber.email,
        Subscriber.name,
    ]
    query = select(*columns)
    if kind == "clicks":
        query = query.add_columns(Link.url).join(Link, Link.id == LinkClick.link_id)
    query = (
        query.add_columns(table.created_at)
        .join(Campaign, Campaign.id == table.campaign_id)
        .outerjoin(Subscriber, Subscriber.id == table.subscriber_id)
        .where(table.created_at >= since, table.id > after_id)
        .order_by(table.id)
        .limit(limit)
    )
    rows = session.execute(query).all()
    if not rows:
        return after_id, []
    return int(rows[-1][0]), [tuple(row[1:]) for row in rows]
