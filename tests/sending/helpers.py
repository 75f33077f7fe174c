"""Shared helpers of the sending tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.core.event import Event
from stmails.db.models import Bounce, Campaign, Subscriber
from stmails.db.types import email_hash
from stmails.services.suppression_list import parse_entry, upsert_many


def record_bounce(session: Session, event: Event) -> None:
    """Stores the bounce and suppresses hard bounces (stand-in until services.bounces lands)."""
    subscriber = session.scalar(
        select(Subscriber).where(func.lower(Subscriber.email) == event.email.lower())
    )
    campaign = session.scalar(select(Campaign).where(Campaign.uuid == event.campaign_uuid))
    session.add(
        Bounce(
            subscriber_id=subscriber.id if subscriber else None,
            email=event.email,
            email_hash=email_hash(event.email),
            campaign_id=campaign.id if campaign else None,
            campaign_uuid=event.campaign_uuid,
            type=event.type,
            effective_type=event.type,
            reason=event.reason,
            status=event.status,
            replycode=event.replycode,
            diagnostic=event.diagnostic,
            source=event.source,
            dedup_key=event.dedup_key(),
            count_key=event.campaign_uuid or "none",
        )
    )
    if event.type == "hard":
        upsert_many(session, [parse_entry({"recipient": event.email, "reason": "hard_bounce"})])
