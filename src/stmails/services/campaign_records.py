"""Campaign records: CRUD, their lists, and the allowed status changes.

Sending them is `services.sending.campaigns`'s (the life cycle of a send, rendering, the
runner); this module holds only the records and their rules. It was `services.campaigns`,
which stays as a deprecated alias.

Status changes follow listmonk: draft -> scheduled | running; scheduled -> draft | running |
cancelled; running -> paused | cancelled | finished; paused -> running | cancelled. Content can
change only while a campaign is a draft, scheduled or paused.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    StrictStr,
    ValidationError,
)
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    CAMPAIGN_STATUSES,
    CONTENT_TYPES,
    Bounce,
    Campaign,
    CampaignList,
    CampaignMedia,
    CampaignSend,
    MailingList,
    Media,
    Template,
)
from stmails.db.types import utcnow
from stmails.ingest.native import parse_timestamp
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.pages import (
    Page,
    all_tags,
    check_paging,
    count_of,
    delete_by_ids,
    get_or_404,
    ordering,
    paged,
)
from stmails.services.validation import first_error, none_is_empty

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


# The longest text a campaign field takes (a body with inline images can be large).
MAX_CONTENT = 5_000_000
_Content = Annotated[StrictStr, Field(max_length=MAX_CONTENT)] | None


def _send_at(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp")
    try:
        return parse_timestamp(value)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None


class CampaignBody(BaseModel):
    """The campaign columns a listmonk create or update body may carry (`lists`, `media` and
    the archive fields are read apart); each is type-checked here, its meaning by `create` and
    `update_campaign`. Fields are checked in this order; the first error is the one reported.
    """

    model_config = ConfigDict(extra="ignore")

    name: _Content = None
    subject: _Content = None
    from_email: _Content = None
    body: _Content = None
    altbody: _Content = None
    content_type: _Content = None
    messenger: _Content = None
    type: _Content = None
    # null: no tags.
    tags: Annotated[list[StrictStr], Strict(), BeforeValidator(none_is_empty)] = []
    send_at: Annotated[datetime | None, BeforeValidator(_send_at)] = None
    # 0 or null: the default campaign template.
    template_id: Annotated[StrictInt, AfterValidator(lambda v: v or None)] | None = None
    # listmonk's custom headers: [{"X-Name": "value"}, ...]; an empty value is none.
    headers: Annotated[
        list[Annotated[dict[str, StrictStr], Strict()]],
        Strict(),
        BeforeValidator(lambda v: v or []),
    ] = []
    attribs: Annotated[
        dict[str, Any], Strict(), BeforeValidator(lambda v: {} if v is None else v)
    ] = {}
    body_source: _Content = None


# What a refused field says (the messages the API has always answered with).
_BODY_WORDING = {
    "string_type": "must be a string",
    "string_too_long": f"longer than {MAX_CONTENT} characters",
    "tags": "must be an array of strings",
    "template_id": "must be a template id",
    "headers": 'must be an array of objects like [{"X-Name": "value"}]',
    "attribs": "must be a JSON object",
}
# Columns that cannot be null: a client's null leaves them to their defaults.
_NOT_NULL = ("from_email", "body", "content_type", "messenger", "type")


def body_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The campaign columns present in a listmonk create/update body, type-checked (keyword
    arguments of `create` and `update_campaign`); InvalidInput naming the first wrong field."""
    try:
        valid = CampaignBody.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc, _BODY_WORDING) from None
    return {
        name: getattr(valid, name)
        for name in CampaignBody.model_fields
        if name in valid.model_fields_set
        and not (name in _NOT_NULL and getattr(valid, name) is None)
    }


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
    if "attribs" in values and not isinstance(values["attribs"], Mapping):
        raise InvalidInput("attribs", "must be a JSON object")
    if values.get("body_source") is not None and not isinstance(values["body_source"], str):
        raise InvalidInput("body_source", "must be a string")


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
    media_ids: Sequence[int] = (),
    now: datetime | None = None,
    **fields: Any,
) -> Campaign:
    """A new draft campaign on `list_ids` (at least one), carrying the media `media_ids`.
    `fields`: any other Campaign column (from_email, body, altbody, content_type, template_id,
    send_at, tags, headers, messenger, type, attribs, body_source).

    Without a `template_id` the campaign gets the default campaign template, as in listmonk
    (a `visual` campaign is a whole document and gets none)."""
    unknown = set(fields) - _WRITABLE
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "unknown field")
    if not list_ids:
        raise InvalidInput("lists", "at least one list is required")
    values = {"name": name, "subject": subject, **fields}
    _check_fields(values)
    if values.get("template_id") is None and values.get("content_type") != "visual":
        values["template_id"] = default_template_id(session)
    now = now or utcnow()
    campaign = Campaign(**values, status="draft", created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    _set_lists(session, campaign, list_ids)
    set_media(session, campaign, media_ids)
    return campaign


def default_template_id(session: Session) -> int | None:
    """The id of the default campaign template (None when there is none)."""
    return session.scalar(
        select(Template.id).where(Template.type == "campaign", Template.is_default.is_(True))
    )


def set_media(session: Session, campaign: Campaign, media_ids: Sequence[int]) -> None:
    """Makes `media_ids` the media the campaign carries (listmonk's `media`); InvalidInput
    naming the ids the library does not have."""
    wanted = list(dict.fromkeys(media_ids))
    files = {m.id: m.filename for m in session.scalars(select(Media).where(Media.id.in_(wanted)))}
    missing = [i for i in wanted if i not in files]
    if missing:
        raise InvalidInput("media", f"no such media: {missing}")
    session.execute(delete(CampaignMedia).where(CampaignMedia.campaign_id == campaign.id))
    for media_id in wanted:
        session.add(
            CampaignMedia(campaign_id=campaign.id, media_id=media_id, filename=files[media_id])
        )
    session.flush()


def campaign_media(session: Session, campaign_ids: Sequence[int]) -> dict[int, list[CampaignMedia]]:
    """The media of each campaign (by id), in the order given; a file deleted from the
    library stays with its name and a null id."""
    return _of_campaigns(session, CampaignMedia, campaign_ids)


# The rows that belong to campaigns: their lists and their media.
Owned = TypeVar("Owned", CampaignList, CampaignMedia)


def _of_campaigns(
    session: Session, model: type[Owned], campaign_ids: Sequence[int]
) -> dict[int, list[Owned]]:
    out: dict[int, list[Owned]] = {i: [] for i in campaign_ids}
    rows = session.scalars(
        select(model)
        .where(model.campaign_id.in_(list(campaign_ids)))
        .order_by(model.campaign_id, model.id)
    )
    for row in rows:
        out[row.campaign_id].append(row)
    return out


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
        "attribs",
        "body_source",
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
    media_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> Campaign:
    """Change content fields (only while editable: draft, scheduled, paused), the lists and the
    media (None leaves them as they are)."""
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
    if media_ids is not None:
        set_media(session, campaign, media_ids)
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


def delete_campaigns(
    session: Session, ids: Iterable[int], within: Collection[int] | None = None
) -> int:
    """Delete campaigns (their bounces stay, detached from the campaign), only those going to
    one of the lists `within` when given; returns how many."""
    if within is not None:
        ids = session.scalars(
            select(Campaign.id).where(Campaign.id.in_(list(ids)), on_lists(within))
        ).all()
    return delete_by_ids(session, Campaign.id, ids)


def on_lists(list_ids: Collection[int]) -> Any:
    """The condition "the campaign goes to one of `list_ids`"."""
    return exists().where(
        CampaignList.campaign_id == Campaign.id, CampaignList.list_id.in_(list(list_ids))
    )


def delete_matching(session: Session, search: str, within: Collection[int] | None = None) -> int:
    """Delete the campaigns whose name or subject contains `search` (every campaign when it is
    blank), going to one of the lists `within` when given; returns how many (listmonk's
    `DELETE /api/campaigns?query=`)."""
    query = select(Campaign.id)
    if search.strip():
        query = query.where(_matching(search))
    if within is not None:
        query = query.where(on_lists(within))
    return delete_campaigns(session, list(session.scalars(query)))


def _matching(search: str) -> Any:
    needle = search.strip().lower()
    return func.lower(Campaign.name).contains(needle, autoescape=True) | func.lower(
        Campaign.subject
    ).contains(needle, autoescape=True)


def running_stats(
    session: Session, now: datetime | None = None, within: Collection[int] | None = None
) -> list[dict[str, Any]]:
    """listmonk's progress of the running campaigns (going to one of the lists `within` when
    given): `sent` of `to_send`, `rate` (messages in the last minute) and `net_rate` (messages
    a minute since the start)."""
    now = now or utcnow()
    query = select(Campaign).where(Campaign.status == "running").order_by(Campaign.id)
    if within is not None:
        query = query.where(on_lists(within))
    running = list(session.scalars(query))
    recent = dict.fromkeys((c.id for c in running), 0)
    if running:
        rows = session.execute(
            select(CampaignSend.campaign_id, func.count())
            .where(
                CampaignSend.campaign_id.in_(list(recent)),
                CampaignSend.status == "sent",
                CampaignSend.sent_at >= now - timedelta(minutes=1),
            )
            .group_by(CampaignSend.campaign_id)
        )
        recent.update({int(campaign_id): int(n) for campaign_id, n in rows})
    out = []
    for campaign in running:
        started = campaign.started_at or campaign.created_at
        minutes = max(int((now - started).total_seconds() // 60), 1)
        net_rate = campaign.sent // minutes
        if net_rate > campaign.sent or net_rate > campaign.to_send:
            net_rate = campaign.sent
        out.append(
            {
                "id": campaign.id,
                "status": campaign.status,
                "to_send": campaign.to_send,
                "sent": campaign.sent,
                "started_at": campaign.started_at,
                "updated_at": campaign.updated_at,
                "rate": recent[campaign.id],
                "net_rate": net_rate,
            }
        )
    return out


def campaign_lists(session: Session, campaign_ids: Sequence[int]) -> dict[int, list[CampaignList]]:
    """The lists of each campaign (by id), including the names of deleted lists."""
    return _of_campaigns(session, CampaignList, campaign_ids)


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
    within: Collection[int] | None = None,
    order_by: str = "created_at",
    order: str = "desc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[Campaign]:
    """Campaigns whose name or subject contains `search` (any case), in any of `statuses`,
    carrying every one of `tags` (listmonk's filter), going to one of the lists `within` when
    given."""
    terms = ordering(CAMPAIGN_ORDER, order_by, order, Campaign.id)
    check_paging(page, per_page)
    query = select(Campaign)
    if search.strip():
        query = query.where(_matching(search))
    if statuses:
        query = query.where(Campaign.status.in_(list(statuses)))
    if tags:
        query = query.where(all_tags(Campaign.tags, tags))
    if within is not None:
        query = query.where(on_lists(within))
    total = count_of(session, query)
    ordered = query.order_by(*terms)
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)


def newest_names(session: Session, limit: int) -> list[tuple[int, str]]:
    """The newest `limit` campaigns as (id, name), newest (highest id) first: the choices of
    a filter by campaign."""
    query = select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(limit)
    return [(int(i), str(n)) for i, n in session.execute(query)]


def running_progress(session: Session, limit: int) -> list[tuple[int, str, str, int, int]]:
    """The newest `limit` running campaigns as (id, name, status, to_send, sent), newest
    (highest id) first: what the dashboard shows of the sends under way."""
    rows = session.execute(
        select(Campaign.id, Campaign.name, Campaign.status, Campaign.to_send, Campaign.sent)
        .where(Campaign.status == "running")
        .order_by(Campaign.id.desc())
        .limit(limit)
    )
    return [
        (int(i), str(name), str(status), int(to_send or 0), int(sent or 0))
        for i, name, status, to_send, sent in rows
    ]
