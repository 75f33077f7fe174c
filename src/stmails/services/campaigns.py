"""Campaigns: CRUD, their lists, and the allowed status changes (sending itself comes later).

Status changes follow listmonk: draft -> scheduled | running; scheduled -> draft | running |
cancelled; running -> paused | cancelled | finished; paused -> running | cancelled. Content can
change only while a campaign is a draft, scheduled or paused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    CAMPAIGN_STATUSES,
    CONTENT_TYPES,
    Bounce,
    Campaign,
    CampaignList,
    MailingList,
)
from stmails.db.types import utcnow
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.pages import (
    Page,
    any_tag,
    check_paging,
    count_of,
    delete_by_ids,
    get_or_404,
    ordering,
    paged,
)

CAMPAIGN_ORDER = {
    name: getattr(Campaign, name)
    for name in ("id", "name", "status", "created_at", "updated_at", "send_at")
}
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"scheduled", "running"}),
    "scheduled": frozenset({"draft", "running", "cancelled"}),
    "running": frozenset({"paused", "cancelled", "finished"}),
    "paused": frozenset({"running", "cancelled"}),
    "cancelled": frozenset(),
    "finished": frozenset(),
}
EDITABLE = frozenset({"draft", "scheduled", "paused"})
# listmonk's campaign types: `optin` goes to the unconfirmed subscribers of its double opt-in
# lists (services.sending.campaigns).
CAMPAIGN_TYPES = ("regular", "optin")


def _check_fields(values: Mapping[str, Any]) -> None:
    for name in ("name", "subject"):
        if name in values and (not isinstance(values[name], str) or not values[name].strip()):
            raise InvalidInput(name, "is required")
    if "type" in values and values["type"] not in CAMPAIGN_TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(CAMPAIGN_TYPES)}")
    if "content_type" in values and values["content_type"] not in CONTENT_TYPES:
        raise InvalidInput("content_type", f"must be one of {', '.join(CONTENT_TYPES)}")
    send_at = values.get("send_at")
    if send_at is not None and (not isinstance(send_at, datetime) or send_at.tzinfo is None):
        raise InvalidInput("send_at", "must be a timezone-aware date and time")
    for name in ("tags", "headers"):
        if name in values and not isinstance(values[name], list):
            raise InvalidInput(name, "must be a list")


def _set_lists(session: Session, campaign: Campaign, list_ids: Sequence[int]) -> None:
    lists = list(session.scalars(select(MailingList).where(MailingList.id.in_(list(list_ids)))))
    missing = set(list_ids) - {m.id for m in lists}
    if missing:
        raise NotFound(f"lists not found: {sorted(missing)}")
    session.execute(delete(CampaignList).where(CampaignList.campaign_id == campaign.id))
    for mlist in lists:
        session.add(CampaignList(campaign_id=campaign.id, list_id=mlist.id, list_name=mlist.name))
    session.flush()


def create(
    session: Session,
    *,
    name: str,
    subject: str,
    list_ids: Sequence[int],
    now: datetime | None = None,
    **fields: Any,
) -> Campaign:
    """A new draft campaign on `list_ids` (at least one). `fields`: any other Campaign column
    (from_email, body, altbody, content_type, template_id, send_at, tags, headers, messenger,
    type)."""
    unknown = set(fields) - _WRITABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "unknown field")
    if not list_ids:
        raise InvalidInput("lists", "at least one list is required")
    values = {"name": name, "subject": subject, **fields}
    _check_fields(values)
    now = now or utcnow()
    campaign = Campaign(**values, status="draft", created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    _set_lists(session, campaign, list_ids)
    return campaign


_WRITABLE = frozenset(
    {
        "name",
        "subject",
        "from_email",
        "body",
        "altbody",
        "content_type",
        "template_id",
        "send_at",
        "tags",
        "headers",
        "messenger",
        "type",
    }
)


def get(session: Session, campaign_id: int) -> Campaign:
    """The campaign with `campaign_id`; NotFound otherwise."""
    return get_or_404(session, Campaign, campaign_id, "campaign")


def get_by_uuid(session: Session, uuid: str) -> Campaign | None:
    """The campaign with `uuid`, or None."""
    return session.scalars(select(Campaign).where(Campaign.uuid == uuid.lower())).first()


def update_campaign(
    session: Session,
    campaign: Campaign,
    *,
    list_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> Campaign:
    """Change content fields (only while editable: draft, scheduled, paused) and the lists."""
    if campaign.status not in EDITABLE:
        raise InvalidInput("status", f"a {campaign.status} campaign cannot be changed")
    unknown = set(fields) - _WRITABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "unknown field")
    _check_fields(fields)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if list_ids is not None:
        if not list_ids:
            raise InvalidInput("lists", "at least one list is required")
        _set_lists(session, campaign, list_ids)
    campaign.updated_at = now or utcnow()
    session.flush()
    return campaign


def set_status(
    session: Session, campaign: Campaign, status: str, *, now: datetime | None = None
) -> Campaign:
    """Move `campaign` to `status` if listmonk's state machine allows it (InvalidInput if not).

    Scheduling needs `send_at`; starting records `started_at` the first time.
    """
    if status not in CAMPAIGN_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(CAMPAIGN_STATUSES)}")
    if status not in TRANSITIONS[campaign.status]:
        raise InvalidInput("status", f"cannot go from {campaign.status} to {status}")
    if status == "scheduled" and campaign.send_at is None:
        raise InvalidInput("send_at", "is required to schedule a campaign")
    now = now or utcnow()
    if status == "running" and campaign.started_at is None:
        campaign.started_at = now
    campaign.status = status
    campaign.updated_at = now
    session.flush()
    return campaign


def delete_campaigns(session: Session, ids: Iterable[int]) -> int:
    """Delete campaigns (their bounces stay, detached from the campaign); returns how many."""
    return delete_by_ids(session, Campaign.id, ids)


def campaign_lists(session: Session, campaign_ids: Sequence[int]) -> dict[int, list[CampaignList]]:
    """The lists of each campaign (by id), including the names of deleted lists."""
    out: dict[int, list[CampaignList]] = {i: [] for i in campaign_ids}
    rows = session.scalars(
        select(CampaignList)
        .where(CampaignList.campaign_id.in_(list(campaign_ids)))
        .order_by(CampaignList.campaign_id, CampaignList.id)
    )
    for row in rows:
        out[row.campaign_id].append(row)
    return out


def bounce_counts(session: Session, campaign_ids: Sequence[int]) -> dict[int, int]:
    """How many bounces (of every type, complaints included) each campaign has, by id."""
    out = dict.fromkeys(campaign_ids, 0)
    if campaign_ids:
        rows = session.execute(
            select(Bounce.campaign_id, func.count())
            .where(Bounce.campaign_id.in_(list(campaign_ids)))
            .group_by(Bounce.campaign_id)
        )
        for campaign_id, count in rows:
            if campaign_id is not None:
                out[campaign_id] = int(count)
    return out


def list_campaigns(
    session: Session,
    *,
    search: str = "",
    statuses: Sequence[str] = (),
    tags: Sequence[str] = (),
    order_by: str = "created_at",
    order: str = "desc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[Campaign]:
    """Campaigns whose name or subject contains `search` (any case), in any of `statuses`,
    carrying any of `tags`."""
    terms = ordering(CAMPAIGN_ORDER, order_by, order, Campaign.id)
    check_paging(page, per_page)
    query = select(Campaign)
    if search.strip():
        needle = search.strip().lower()
        query = query.where(
            func.lower(Campaign.name).contains(needle)
            | func.lower(Campaign.subject).contains(needle)
        )
    if statuses:
        query = query.where(Campaign.status.in_(list(statuses)))
    if tags:
        query = query.where(any_tag(Campaign.tags, tags))
    total = count_of(session, query)
    ordered = query.order_by(*terms)
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)
