"""What the sends of campaigns add up to: a campaign's counters (`campaign_stats`, from its
rows in the sends ledger, its bounces and its send errors) and the sending queue of the
running and paused campaigns (`send_queue_depths`, for the metrics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from stmails.db.models import Bounce, Campaign, CampaignSend, Subscriber
from stmails.services import subscribers
from stmails.services.sending.campaigns.ledger import DEFERRED, IN_DOUBT, IN_FLIGHT, UNSUBSCRIBED


def campaign_stats(session: Session, campaign_id: int) -> dict[str, Any]:
    """Per-campaign counters: sent (accepted by the SMTP server), skipped by reason, failed,
    bounces by type, complaints, unsubscribes, deferred, in-doubt and in-flight (`sending`)
    sends, and the send errors: how many, the latest, and why the sender paused the campaign."""
    skipped: dict[str, int] = {}
    sent = failed = deferred = in_doubt = sending = unsubscribes = 0
    rows = session.execute(
        select(CampaignSend.status, CampaignSend.reason, func.count())
        .where(CampaignSend.campaign_id == campaign_id)
        .group_by(CampaignSend.status, CampaignSend.reason)
    )
    for status, reason, count in rows:
        if status == "sent":
            if reason == IN_DOUBT:
                in_doubt += count
            elif reason == IN_FLIGHT:
                sending += count
            else:
                sent += count
            if reason == UNSUBSCRIBED:
                unsubscribes += count
        elif status == "skipped":
            key = reason.split(":", 2)[0] if reason.startswith("suppressed") else reason
            key = ":".join(reason.split(":")[:2]) if reason.startswith("suppressed") else key
            skipped[key] = skipped.get(key, 0) + count
        elif reason.startswith(DEFERRED):
            deferred += count
        else:
            failed += count
    bounces = dict(
        session.execute(
            select(Bounce.effective_type, func.count())
            .where(Bounce.campaign_id == campaign_id)
            .group_by(Bounce.effective_type)
        ).all()
    )
    errors = session.execute(
        select(Campaign.send_errors, Campaign.last_errors, Campaign.pause_reason).where(
            Campaign.id == campaign_id
        )
    ).first()
    send_errors, last_errors, pause_reason = errors if errors is not None else (0, [], "")
    return {
        "sent": sent,
        "skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "failed": failed,
        "deferred": deferred,
        "in_doubt": in_doubt,
        "sending": sending,
        "bounces": {"hard": int(bounces.get("hard", 0)), "soft": int(bounces.get("soft", 0))},
        "complaints": int(bounces.get("complaint", 0)),
        "unsubscribes": unsubscribes,
        "send_errors": int(send_errors or 0),
        "last_errors": list(last_errors or []),
        "pause_reason": pause_reason or "",
    }


def subscribers_by_email(session: Session, emails: Iterable[str]) -> dict[str, Subscriber]:
    """Subscribers whose address is among `emails` (`subscribers.get_many_by_email`)."""
    return subscribers.get_many_by_email(session, emails)


def send_queue_depths(session: Session) -> dict[str, int]:
    """The sending queue of the running and paused campaigns now: recipients not yet handled
    (`campaign_unsent`, running ones), claims being sent (`campaign_in_flight`), 4xx deferrals
    waiting for their retry (`campaign_deferred`) and sends in doubt (`campaign_in_doubt`)."""
    left = Campaign.to_send - Campaign.sent - Campaign.skipped - Campaign.failed
    unsent = session.scalar(
        select(func.coalesce(func.sum(case((left > 0, left), else_=0)), 0)).where(
            Campaign.status == "running"
        )
    )
    active = select(Campaign.id).where(Campaign.status.in_(("running", "paused")))
    rows = session.execute(
        select(CampaignSend.status, CampaignSend.reason, func.count())
        .where(
            CampaignSend.campaign_id.in_(active.scalar_subquery()),
            CampaignSend.reason.in_((IN_FLIGHT, IN_DOUBT))
            | CampaignSend.reason.like(f"{DEFERRED}%"),
        )
        .group_by(CampaignSend.status, CampaignSend.reason)
    )
    depths = {
        "campaign_unsent": int(unsent or 0),
        "campaign_in_flight": 0,
        "campaign_deferred": 0,
        "campaign_in_doubt": 0,
    }
    for status, reason, count in rows:
        if reason == IN_FLIGHT:
            depths["campaign_in_flight"] += int(count)
        elif reason == IN_DOUBT:
            depths["campaign_in_doubt"] += int(count)
        elif status == "failed":
            depths["campaign_deferred"] += int(count)
    return depths
