"""Stored alerts: raising one (with its deliveries queued in the same transaction), listing,
acknowledging, and releasing a held domain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from stmails.db.dialect import least
from stmails.db.models import (
    ALERT_LEVELS,
    Alert,
    AlertDelivery,
    Campaign,
    CampaignHold,
    CampaignSend,
)
from stmails.db.types import utcnow
from stmails.services.alerts.config import AlertConfig
from stmails.services.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger("stmails.alerts")

MAX_PER_PAGE = 500
HELD = "held:"


def raise_alert(
    session: Session,
    config: AlertConfig,
    level: str,
    kind: str,
    message: str,
    figures: dict[str, Any],
    *,
    campaign_id: int | None = None,
    domain: str = "",
    flush: bool = False,
    now: datetime | None = None,
) -> Alert:
    """Stores an alert and queues its delivery to every notify address and enabled webhook
    (the caller commits: both happen or neither does); logs it."""
    now = now or utcnow()
    alert = Alert(
        level=level,
        kind=kind,
        campaign_id=campaign_id,
        domain=domain,
        message=message[:1000],
        figures=figures,
        actions={},
        created_at=now,
        acknowledged_by="",
    )
    session.add(alert)
    session.flush()
    for email in config.notify_emails:
        session.add(
            AlertDelivery(
                alert_id=alert.id,
                channel="email",
                target=email,
                next_attempt_at=now,
                created_at=now,
            )
        )
    for hook in config.webhooks:
        if hook.enabled:
            session.add(
                AlertDelivery(
                    alert_id=alert.id,
                    channel="webhook",
                    target=hook.url,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    if flush:
        session.flush()
    (log.error if level == "critical" else log.warning)(
        "alert %s (%s): %s", alert.id, kind, message
    )
    return alert


def as_dict(alert: Alert, deliveries: list[AlertDelivery] | None = None) -> dict[str, Any]:
    """An alert in the API's shape."""
    out: dict[str, Any] = {
        "id": alert.id,
        "level": alert.level,
        "kind": alert.kind,
        "campaign_id": alert.campaign_id,
        "domain": alert.domain,
        "message": alert.message,
        "figures": alert.figures,
        "actions": alert.actions,
        "created_at": alert.created_at.isoformat(),
        "acknowledged": alert.acknowledged_at is not None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by,
    }
    if deliveries is not None:
        out["deliveries"] = [
            {
                "channel": d.channel,
                "target": d.target,
                "status": d.status,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                "last_error": d.last_error,
            }
            for d in deliveries
        ]
    return out


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """`GET /api/alerts`'s filters; None: any."""

    level: str | None = None
    campaign_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    acknowledged: bool | None = None


def list_alerts(
    session: Session, filters: AlertFilter, page: int = 1, per_page: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """Alerts matching `filters`, newest first, one page of them, and how many match."""
    if filters.level is not None and filters.level not in ALERT_LEVELS:
        raise InvalidInput("level", f"must be one of {', '.join(ALERT_LEVELS)}")
    if page < 1:
        raise InvalidInput("page", "must be 1 or more")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput("per_page", f"must be between 1 and {MAX_PER_PAGE}")
    conditions = []
    if filters.level is not None:
        conditions.append(Alert.level == filters.level)
    if filters.campaign_id is not None:
        conditions.append(Alert.campaign_id == filters.campaign_id)
    if filters.since is not None:
        conditions.append(Alert.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Alert.created_at < filters.until)
    if filters.acknowledged is not None:
        conditions.append(
            Alert.acknowledged_at.is_not(None)
            if filters.acknowledged
            else Alert.acknowledged_at.is_(None)
        )
    total = int(session.scalar(select(func.count()).select_from(Alert).where(*conditions)) or 0)
    alerts = list(
        session.scalars(
            select(Alert)
            .where(*conditions)
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    by_alert: dict[int, list[AlertDelivery]] = {a.id: [] for a in alerts}
    if alerts:
        for delivery in session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id.in_(list(by_alert)))
            .order_by(AlertDelivery.id)
        ):
            by_alert[delivery.alert_id].append(delivery)
    return [as_dict(a, by_alert[a.id]) for a in alerts], total


def get_alert(session: Session, alert_id: int) -> dict[str, Any]:
    """One alert with its deliveries; NotFound when there is none."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert not found")
    deliveries = list(
        session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id == alert_id)
            .order_by(AlertDelivery.id)
        )
    )
    return as_dict(alert, deliveries)


def acknowledge(
    session: Session,
    alert_id: int,
    who: str,
    *,
    acknowledged: bool = True,
    release_domain: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Acknowledges (or un-acknowledges) an alert; with `release_domain`, also releases the
    domain its campaign held (see `release_hold`). The caller commits."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert not found")
    now = now or utcnow()
    if acknowledged:
        alert.acknowledged_at = alert.acknowledged_at or now
        alert.acknowledged_by = alert.acknowledged_by or who[:200]
    else:
        alert.acknowledged_at = None
        alert.acknowledged_by = ""
    if release_domain:
        if alert.kind != "domain_bounce_rate" or alert.campaign_id is None:
            raise InvalidInput("release_domain", "only a domain alert of a campaign holds a domain")
        release_hold(session, alert.campaign_id, alert.domain)
        alert.actions = {**alert.actions, "released_domain": alert.domain, "released_by": who[:200]}
    session.flush()
    return get_alert(session, alert_id)


def release_hold(session: Session, campaign_id: int, domain: str) -> int:
    """Releases a held domain of a campaign: its held messages go back to the sender's queue
    (the campaign sends them when it runs). A campaign that finished or was cancelled has
    dropped them: Conflict. Returns how many messages were returned to the queue."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign not found")
    hold = session.get(CampaignHold, (campaign_id, domain))
    if hold is None:
        raise Conflict("domain", f"{domain} is not held in campaign {campaign_id}")
    if campaign.status in ("finished", "cancelled"):
        raise Conflict(
            "campaign", f"the campaign is {campaign.status}: its messages to {domain} were dropped"
        )
    session.delete(hold)
    reason = f"{HELD}{domain}"
    ids = [
        int(i)
        for i in session.scalars(
            select(CampaignSend.subscriber_id).where(
                CampaignSend.campaign_id == campaign_id,
                CampaignSend.status == "skipped",
                CampaignSend.reason == reason,
            )
        )
    ]
    if ids:
        session.execute(
            delete(CampaignSend).where(
                CampaignSend.campaign_id == campaign_id,
                CampaignSend.status == "skipped",
                CampaignSend.reason == reason,
            )
        )
        # Walk back so the sender fetches them again; rows claimed above them are protected
        # by the unique claim (services.sending.campaigns).
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                skipped=Campaign.skipped - len(ids),
                last_subscriber_id=least(session, Campaign.last_subscriber_id, min(ids) - 1),
            )
        )
    log.warning(
        "campaign %s: %s released, %s messages back in the queue", campaign_id, domain, len(ids)
    )
    return len(ids)
