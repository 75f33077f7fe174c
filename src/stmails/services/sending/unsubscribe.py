"""Unsubscribing through a message's link or its RFC 8058 one-click List-Unsubscribe POST.

The link names the campaign and the subscriber by their random uuids (listmonk's
`/subscription/{campaign_uuid}/{subscriber_uuid}`). Unsubscribing marks the subscriptions to
the campaign's lists `unsubscribed`, adds list-scoped suppression entries for them (reason
`unsubscribe`), and counts the unsubscribe on the campaign (the recipient's `campaign_sends`
row gets the reason `unsubscribed`). A link without a campaign, or a
campaign without lists, unsubscribes from every list and suppresses the address globally.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, CampaignSend, Subscriber, SubscriberList
from stmails.services import suppression
from stmails.services.sending.campaigns import UNSUBSCRIBED, campaign_list_ids


@dataclass(frozen=True)
class UnsubscribeResult:
    """Who was unsubscribed from which lists (empty: every list)."""

    subscriber_id: int
    email: str
    list_ids: tuple[int, ...]


def find_target(
    session: Session, campaign_uuid: str, subscriber_uuid: str
) -> tuple[Campaign | None, Subscriber] | None:
    """The campaign (None for a link without one) and subscriber a link names; None if unknown."""
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.uuid == subscriber_uuid.strip().lower())
    )
    if subscriber is None:
        return None
    campaign = session.scalar(
        select(Campaign).where(Campaign.uuid == campaign_uuid.strip().lower())
    )
    return campaign, subscriber


def unsubscribe(
    session: Session, campaign_uuid: str, subscriber_uuid: str, *, source: str
) -> UnsubscribeResult | None:
    """Unsubscribes the subscriber a link names (None when the link names nobody).

    Idempotent: a second call changes nothing more. The caller commits.
    """
    target = find_target(session, campaign_uuid, subscriber_uuid)
    if target is None:
        return None
    campaign, subscriber = target
    lists = campaign_list_ids(session, campaign.id) if campaign is not None else []
    where = [SubscriberList.subscriber_id == subscriber.id]
    if lists:
        where.append(SubscriberList.list_id.in_(lists))
    session.execute(update(SubscriberList).where(*where).values(status="unsubscribed"))
    description = f"campaign {campaign.uuid}" if campaign is not None else "unsubscribe link"
    scopes: list[int | None] = list(lists) if lists else [None]
    for list_id in scopes:
        suppression.add(
            session,
            reason="unsubscribe",
            email=subscriber.email,
            list_id=list_id,
            source=source,
            description=description,
        )
    if campaign is not None:
        # The campaign's counter: the recipient's send row is marked (idempotent).
        session.execute(
            update(CampaignSend)
            .where(
                CampaignSend.campaign_id == campaign.id,
                CampaignSend.subscriber_id == subscriber.id,
                CampaignSend.status == "sent",
            )
            .values(reason=UNSUBSCRIBED)
        )
    session.flush()
    return UnsubscribeResult(subscriber.id, subscriber.email, tuple(lists))
