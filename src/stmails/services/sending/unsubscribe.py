"""Unsubscribing through a message's link or its RFC 8058 one-click List-Unsubscribe POST.

The link names the campaign and the subscriber by their random uuids (listmonk's
`/subscription/{campaign_uuid}/{subscriber_uuid}`). Unsubscribing marks the subscriptions to
the campaign's lists `unsubscribed`, adds list-scoped suppression entries for them (reason
`unsubscribe`), and counts the unsubscribe on the campaign (the recipient's `campaign_sends`
row gets the reason `unsubscribed`). A link signed for the subscriber instead of a campaign
(mail that is not a campaign), or a campaign without lists, unsubscribes from every list and
suppresses the address globally. The pair is checked (services.public.resolve_link): a
campaign uuid that never went to the subscriber does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, CampaignSend, Subscriber
from stmails.services.public import resolve_link, unsubscribe_lists
from stmails.services.sending.campaigns import UNSUBSCRIBED, campaign_list_ids


@dataclass(frozen=True)
class UnsubscribeResult:
    """Who was unsubscribed from which lists (empty: every list)."""

    subscriber_id: int
    email: str
    list_ids: tuple[int, ...]


def find_target(
    session: Session, campaign_uuid: str, subscriber_uuid: str, secret: bytes = b""
) -> tuple[Campaign | None, Subscriber] | None:
    """The campaign (None for a link signed for the subscriber, services.public.link_token)
    and subscriber a link names, checked as a pair: None when either is unknown or the
    campaign never went to the subscriber (a forged pair)."""
    target = resolve_link(session, secret, campaign_uuid, subscriber_uuid)
    return None if target is None else (target.campaign, target.subscriber)


def unsubscribe(
    session: Session,
    campaign_uuid: str,
    subscriber_uuid: str,
    *,
    source: str,
    secret: bytes = b"",
    every_list: bool = False,
) -> UnsubscribeResult | None:
    """Unsubscribes the subscriber a link names (None when the link names nobody); from every
    list when the link has no campaign or `every_list`.

    Idempotent: a second call changes nothing more. The caller commits.
    """
    target = find_target(session, campaign_uuid, subscriber_uuid, secret)
    if target is None:
        return None
    campaign, subscriber = target
    lists = campaign_list_ids(session, campaign.id) if campaign is not None else []
    if every_list:
        lists = []
    description = f"campaign {campaign.uuid}" if campaign is not None else "unsubscribe link"
    unsubscribe_lists(session, subscriber, lists or None, source=source, description=description)
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
