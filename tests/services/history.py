"""Helpers that build an event history the way stmails' writers do (tests of the analytics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from stmails.core.event import Event, EventType
from stmails.db.models import Campaign, CampaignList, CampaignSend, MailingList, Subscriber
from stmails.services.bounces import record

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def subscriber(session: Session, email: str) -> Subscriber:
    sub = Subscriber(email=email, name=email)
    session.add(sub)
    session.flush()
    return sub


def campaign(session: Session, name: str) -> Campaign:
    camp = Campaign(name=name, subject=name)
    session.add(camp)
    session.flush()
    return camp


def send(
    session: Session,
    camp: Campaign,
    sub: Subscriber,
    status: str,
    reason: str,
    at: datetime = T0,
    claim_first: bool = True,
) -> CampaignSend:
    """A ledger row as the sender writes it: a claim, then its outcome (an UPDATE)."""
    row = CampaignSend(
        campaign_id=camp.id,
        subscriber_id=sub.id,
        status="sent" if claim_first else status,
        reason="in_flight" if claim_first else reason,
        sent_at=at - timedelta(seconds=30),
        # The Message-ID the sender gives campaign mail (services.sending.campaigns).
        message_id=f"<{camp.uuid}.{sub.uuid}@sender.example>",
    )
    session.add(row)
    session.flush()
    if claim_first:
        row.status, row.reason, row.sent_at = status, reason, at
        session.flush()
    return row


def bounce(
    session: Session,
    kind: EventType,
    email: str,
    camp: Campaign | None = None,
    *,
    at: datetime = T0,
    reason: str = "",
    source: str = "api",
    uuid: str = "",
) -> None:
    record(
        session,
        Event(
            source=source,
            type=kind,
            email=email,
            campaign_uuid=camp.uuid if camp is not None else uuid,
            occurred_at=at,
            reason=reason,
            event_id=f"{kind}:{email}:{at.isoformat()}:{reason}:{source}",
        ),
    )


def mailing_list(session: Session, name: str, *campaigns: Campaign) -> MailingList:
    """A list that `campaigns` were sent to."""
    found = MailingList(name=name)
    session.add(found)
    session.flush()
    for camp in campaigns:
        session.add(CampaignList(campaign_id=camp.id, list_id=found.id, list_name=name))
    session.flush()
    return found
