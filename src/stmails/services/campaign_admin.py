"""Managing campaign records as listmonk's API does (sending is the sender's job). No commits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from stmails.db.models import CAMPAIGN_STATUSES, CONTENT_TYPES, Campaign, CampaignList, MailingList
from stmails.db.types import utcnow
from stmails.services.subscriber_admin import Invalid, NotFound, check_ids

ORDER_FIELDS = ("id", "name", "status", "created_at", "updated_at")


def _text(body: dict[str, Any], field: str, limit: int, required: bool = False) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise Invalid(f"{field}: required")
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field}: must be a string")
    if len(value) > limit:
        raise Invalid(f"{field}: longer than {limit} characters")
    return value


def _send_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise Invalid("send_at: must be an ISO 8601 timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("send_at: not an ISO 8601 timestamp") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{field}: must be an array of strings")
    return value


def _headers(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(h, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in h.items())
        for h in value
    ):
        raise Invalid('headers: must be an array of objects like [{"X-Name": "value"}]')
    return value


def _set_lists(session: Session, campaign: Campaign, list_ids: list[int]) -> None:
    lists = {
        m.id: m.name
        for m in session.scalars(select(MailingList).where(MailingList.id.in_(list_ids)))
    }
    missing = [i for i in list_ids if i not in lists]
    if missing:
        raise NotFound(f"lists: unknown list id(s) {', '.join(map(str, missing))}")
    session.execute(delete(CampaignList).where(CampaignList.campaign_id == campaign.id))
    for list_id in list_ids:
        session.add(
            CampaignList(campaign_id=campaign.id, list_id=list_id, list_name=lists[list_id])
        )


def _apply(session: Session, campaign: Campaign, body: dict[str, Any], full: bool) -> None:
    if full or "name" in body:
        campaign.name = _text(body, "name", 500, required=True)
    if full or "subject" in body:
        campaign.subject = _text(body, "subject", 1000, required=True)
    if "from_email" in body:
        campaign.from_email = _text(body, "from_email", 500)
    if "body" in body:
        campaign.body = _text(body, "body", 5_000_000)
    if "altbody" in body:
        campaign.altbody = _text(body, "altbody", 5_000_000) or None
    if "content_type" in body or full:
        content_type = body.get("content_type") or "richtext"
        if content_type not in CONTENT_TYPES:
            raise Invalid(f"content_type: one of {', '.join(CONTENT_TYPES)}")
        campaign.content_type = content_type
    if "send_at" in body:
        campaign.send_at = _send_at(body.get("send_at"))
    if "tags" in body:
        campaign.tags = _strings(body.get("tags"), "tags")
    if "headers" in body:
        campaign.headers = _headers(body.get("headers"))
    if "messenger" in body:
        campaign.messenger = _text(body, "messenger", 100) or "email"
    if "template_id" in body:
        template_id = body.get("template_id")
        if template_id is not None and (not isinstance(template_id, int) or template_id < 1):
            raise Invalid("template_id: must be a template id")
        campaign.template_id = template_id or None


def create(session: Session, body: dict[str, Any]) -> Campaign:
    """A draft campaign from listmonk's fields; `lists` (ids) is required."""
    list_ids = check_ids(body.get("lists"), "lists")
    if not list_ids:
        raise Invalid("lists: at least one list id is required")
    campaign = Campaign(name="", subject="")
    _apply(session, campaign, body, full=True)
    campaign.template_id = None
    session.add(campaign)
    session.flush()
    _set_lists(session, campaign, list_ids)
    session.flush()
    return campaign


def update(session: Session, campaign: Campaign, body: dict[str, Any]) -> Campaign:
    """Changes the fields present in `body`; running or finished campaigns cannot change."""
    if campaign.status in ("running", "finished", "cancelled"):
        raise Invalid(f"status: a {campaign.status} campaign cannot be changed")
    _apply(session, campaign, body, full=False)
    if "lists" in body:
        list_ids = check_ids(body.get("lists"), "lists")
        if not list_ids:
            raise Invalid("lists: at least one list id is required")
        _set_lists(session, campaign, list_ids)
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def lists_of(session: Session, campaign_ids: list[int]) -> dict[int, list[tuple[int | None, str]]]:
    """Each campaign's lists as (list id or None when deleted, name)."""
    found: dict[int, list[tuple[int | None, str]]] = {cid: [] for cid in campaign_ids}
    rows = session.scalars(
        select(CampaignList)
        .where(CampaignList.campaign_id.in_(campaign_ids))
        .order_by(CampaignList.id)
    )
    for row in rows:
        found[row.campaign_id].append((row.list_id, row.list_name))
    return found


def search(
    session: Session,
    query: str,
    statuses: list[str],
    order_by: str,
    order: str,
    offset: int,
    limit: int | None,
) -> tuple[list[Campaign], int]:
    """One page of campaigns matching a name/subject search and statuses, and the total."""
    if order_by not in ORDER_FIELDS:
        raise Invalid(f"order_by: one of {', '.join(ORDER_FIELDS)}")
    for status in statuses:
        if status not in CAMPAIGN_STATUSES:
            raise Invalid(f"status: one of {', '.join(CAMPAIGN_STATUSES)}")
    statement = select(Campaign)
    if statuses:
        statement = statement.where(Campaign.status.in_(statuses))
    if query.strip():
        needle = f"%{query.strip().lower()}%"
        statement = statement.where(
            or_(func.lower(Campaign.name).like(needle), func.lower(Campaign.subject).like(needle))
        )
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    column = getattr(Campaign, order_by)
    statement = statement.order_by(column.desc() if order == "desc" else column.asc(), Campaign.id)
    statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement)), total


def delete_campaign(session: Session, campaign_id: int) -> None:
    """Deletes the campaign (its list links go with it; bounces keep their campaign uuid)."""
    session.execute(delete(CampaignList).where(CampaignList.campaign_id == campaign_id))
    session.execute(delete(Campaign).where(Campaign.id == campaign_id))
