"""Model objects to listmonk's JSON shapes (field names and nesting as its API returns them)."""

from __future__ import annotations

from typing import Any

from stmails.db.models import (
    Campaign,
    CampaignList,
    CampaignMedia,
    MailingList,
    Subscriber,
    SubscriberHygiene,
)
from stmails.services.bounces import BounceRow
from stmails.services.lists import ListCounts
from stmails.services.subscribers import Subscription
from stmails.web.responses import timestamp


def mailing_list(item: MailingList, counts: ListCounts | None = None) -> dict[str, Any]:
    """A list as `GET /api/lists` returns it; with `counts`, listmonk's `subscriber_count` and
    `subscriber_statuses` (subscriptions by status, the statuses that have any)."""
    body: dict[str, Any] = {
        "id": item.id,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "uuid": item.uuid,
        "name": item.name,
        "type": item.type,
        "optin": item.optin,
        "status": item.status,
        "tags": list(item.tags or []),
        "description": item.description,
    }
    if counts is not None:
        body["subscriber_count"] = counts.total
        body["subscriber_statuses"] = dict(counts.by_status)
    return body


def membership(item: Subscription) -> dict[str, Any]:
    """A list inside a subscriber, with the subscription's status."""
    body = mailing_list(item.list)
    body["subscription_status"] = item.status
    body["subscription_created_at"] = timestamp(item.created_at)
    body["subscription_updated_at"] = timestamp(item.updated_at)
    return body


def hygiene(row: SubscriberHygiene | None) -> dict[str, Any]:
    """What list hygiene knows about a subscriber (stmails' fields beside listmonk's): the
    risk score with its factors (null until scored), the last verification, the sunset
    state."""
    if row is None:
        return {
            "risk_score": None,
            "risk_level": None,
            "risk_factors": [],
            "risk_scored_at": None,
            "verify_result": "",
            "verified_at": None,
            "hygiene_state": "active",
        }
    scored = row.scored_at is not None
    return {
        "risk_score": row.risk_score if scored else None,
        "risk_level": row.risk_level if scored else None,
        "risk_factors": list(row.risk_factors or []),
        "risk_scored_at": timestamp(row.scored_at) if row.scored_at else None,
        "verify_result": row.verify_result,
        "verified_at": timestamp(row.verified_at) if row.verified_at else None,
        "hygiene_state": row.state,
    }


def subscriber(
    item: Subscriber, lists: list[Subscription], hygiene_row: SubscriberHygiene | None = None
) -> dict[str, Any]:
    """A subscriber as `GET /api/subscribers/{id}` returns it, with list hygiene's fields."""
    return {
        "id": item.id,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "uuid": item.uuid,
        "email": item.email,
        "name": item.name,
        "attribs": item.attribs or {},
        "status": item.status,
        "lists": [membership(m) for m in lists],
        **hygiene(hygiene_row),
    }


def bounce(row: BounceRow) -> dict[str, Any]:
    """A bounce as `GET /api/bounces` returns it, plus stmails' own fields."""
    return {
        "id": row.id,
        "type": row.type,
        "source": row.source,
        "meta": dict(row.meta or {}),
        "created_at": timestamp(row.created_at),
        "email": row.email,
        "subscriber_uuid": row.subscriber_uuid or "",
        "subscriber_id": row.subscriber_id,
        "campaign": (
            {"id": row.campaign_id, "name": row.campaign_name or ""}
            if row.campaign_id is not None
            else None
        ),
        "campaign_uuid": row.campaign_uuid,
        "effective_type": row.effective_type,
        "attributed": row.attributed,
        "reason": row.reason,
        "status": row.status,
        "replycode": row.replycode,
        "diagnostic": row.diagnostic,
        "feedback_type": row.feedback_type,
        "recorded_at": timestamp(row.recorded_at),
    }


def campaign(
    item: Campaign,
    lists: list[CampaignList],
    bounces: int,
    engagement: tuple[int, int] = (0, 0),
    media: list[CampaignMedia] | None = None,
) -> dict[str, Any]:
    """A campaign as `GET /api/campaigns/{id}` returns it; `engagement` is its (views, clicks)
    by people (services.analytics.listmonk), `media` the files it carries."""
    return {
        "id": item.id,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "views": engagement[0],
        "clicks": engagement[1],
        "bounces": bounces,
        "lists": [{"id": link.list_id, "name": link.list_name} for link in lists],
        "started_at": timestamp(item.started_at),
        "to_send": item.to_send,
        "sent": item.sent,
        "uuid": item.uuid,
        "type": item.type,
        "name": item.name,
        "subject": item.subject,
        "from_email": item.from_email,
        "body": item.body,
        "body_source": item.body_source,
        "altbody": item.altbody,
        "send_at": timestamp(item.send_at),
        "status": item.status,
        "content_type": item.content_type,
        "tags": list(item.tags or []),
        "headers": list(item.headers or []),
        "template_id": item.template_id,
        "messenger": item.messenger,
        "archive": item.archive,
        "archive_slug": item.archive_slug,
        "archive_template_id": item.archive_template_id,
        "archive_meta": dict(item.archive_meta or {}),
        # stmails: the send errors, the latest of them, and why the sender paused it.
        "send_errors": item.send_errors,
        "last_errors": list(item.last_errors or []),
        "pause_reason": item.pause_reason,
        "wait_reason": item.wait_reason,
        # The figures of the deliverability alert that paused or held it (services.alerts).
        "alert_figures": dict(item.alert_figures or {}),
        "attribs": dict(item.attribs or {}),
        "media": [{"id": m.media_id, "filename": m.filename} for m in media or []],
    }
