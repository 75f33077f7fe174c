"""Listing and deleting bounces, for the HTTP API (`/api/bounces`) and the admin pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.orm import Session

from stmails.db.models import Bounce, Campaign, Subscriber, SubscriberList
from stmails.db.types import email_hash, utcnow
from stmails.services.pages import Page, check_paging, ordering, paged

_Ts = TypeVarTuple("_Ts")

BounceOrder = Literal["created_at", "email", "campaign_name", "source", "type", "reason", "id"]


@dataclass(frozen=True, slots=True)
class BounceFilter:
    """Filters of `list_bounces` (all optional; combined with AND)."""

    campaign_id: int | None = None
    subscriber_id: int | None = None
    type: str | None = None
    reason: str | None = None
    source: str | None = None
    # Exact address, any case.
    email: str | None = None
    # The recipient's domain (exact, any case; kept when the address was erased).
    domain: str | None = None
    # created_at >= since and created_at < until.
    since: datetime | None = None
    until: datetime | None = None
    ids: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class BounceRow:
    """One bounce as the API shows it (listmonk's fields plus stmails' own)."""

    id: int
    type: str
    effective_type: str
    reason: str
    status: str
    replycode: str
    diagnostic: str
    feedback_type: str
    source: str
    meta: Mapping[str, Any]
    email: str
    subscriber_id: int | None
    subscriber_uuid: str | None
    campaign_id: int | None
    campaign_uuid: str
    campaign_name: str | None
    created_at: datetime
    recorded_at: datetime
    # False for a bounce from a mailbox that was only recorded (meta["unattributed"]: why).
    attributed: bool = True


BouncePage = Page[BounceRow]


def _filtered(query: Select[*_Ts], filters: BounceFilter) -> Select[*_Ts]:
    conditions: list[ColumnElement[bool]] = []
    if filters.campaign_id is not None:
        conditions.append(Bounce.campaign_id == filters.campaign_id)
    if filters.subscriber_id is not None:
        conditions.append(Bounce.subscriber_id == filters.subscriber_id)
    if filters.type:
        conditions.append(Bounce.type == filters.type)
    if filters.reason:
        conditions.append(Bounce.reason == filters.reason)
    if filters.source:
        conditions.append(Bounce.source == filters.source)
    if filters.email:
        conditions.append(Bounce.email_hash == email_hash(filters.email))
    if filters.domain:
        conditions.append(Bounce.domain == filters.domain.strip().lower().lstrip("@"))
    if filters.since is not None:
        conditions.append(Bounce.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Bounce.created_at < filters.until)
    if filters.ids is not None:
        conditions.append(Bounce.id.in_(list(filters.ids)))
    return query.where(*conditions)


_ORDER_COLUMNS: dict[str, Any] = {
    "created_at": Bounce.created_at,
    "email": Bounce.email,
    "campaign_name": Campaign.name,
    "source": Bounce.source,
    "type": Bounce.type,
    "reason": Bounce.reason,
    "id": Bounce.id,
}


def list_bounces(
    session: Session,
    filters: BounceFilter = BounceFilter(),
    *,
    order_by: str = "created_at",
    order: str = "desc",
    page: int = 1,
    per_page: int | None = 20,
) -> BouncePage:
    """Bounces matching `filters`, newest first by default, one page at a time.

    `order_by` is one of created_at, email, campaign_name, source, type, reason, id; `order` is
    asc or desc (InvalidInput otherwise); ties are broken by id. `per_page` None returns all.
    """
    terms = ordering(_ORDER_COLUMNS, order_by, order, Bounce.id)
    check_paging(page, per_page)
    total = session.scalar(_filtered(select(func.count(Bounce.id)), filters)) or 0
    if order_by == "campaign_name" or per_page is None:
        query = _filtered(_row_query(), filters).order_by(*terms)
        rows = [_row(r) for r in session.execute(paged(query, page, per_page))]
        return Page(rows, int(total), page, per_page)
    # The page's ids first, from the bounces' own indexes: a deep page then skips its rows
    # without joining each skipped one to its subscriber and campaign.
    ids = list(
        session.scalars(
            paged(_filtered(select(Bounce.id), filters).order_by(*terms), page, per_page)
        )
    )
    if not ids:
        return Page([], int(total), page, per_page)
    query = _row_query().where(Bounce.id.in_(ids)).order_by(*terms)
    rows = [_row(r) for r in session.execute(query)]
    return Page(rows, int(total), page, per_page)


def get_bounce(session: Session, bounce_id: int) -> BounceRow | None:
    """One bounce by id, or None."""
    found = session.execute(_row_query().where(Bounce.id == bounce_id)).first()
    return _row(found) if found is not None else None


def delete_bounces(session: Session, filters: BounceFilter) -> int:
    """Delete the bounces matching `filters` (all of them with an empty filter); returns how many.

    Only history is removed: subscriber statuses and suppressions stay as they are.
    """
    ids = select(Bounce.id)
    result = session.execute(
        delete(Bounce)
        .where(Bounce.id.in_(_filtered(ids, filters).scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def blocklist_bounced(session: Session, *, now: datetime | None = None) -> int:
    """Blocklist every subscriber that has bounces (listmonk's PUT /api/bounces/blocklist).

    Their subscriptions become unsubscribed. Unattributed bounces (which anybody can send to a
    bounce mailbox) do not count. Returns the number of subscribers blocklisted now.
    """
    now = now or utcnow()
    bounced = select(Bounce.subscriber_id).where(
        Bounce.subscriber_id.is_not(None), Bounce.attributed.is_(True)
    )
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.subscriber_id.in_(bounced))
        .values(status="unsubscribed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(bounced), Subscriber.status != "blocklisted")
        .values(status="blocklisted", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _row_query() -> Select[Bounce, str, str]:
    return (
        select(Bounce, Subscriber.uuid, Campaign.name)
        .outerjoin(Subscriber, Subscriber.id == Bounce.subscriber_id)
        .outerjoin(Campaign, Campaign.id == Bounce.campaign_id)
    )


def _row(found: Any) -> BounceRow:
    bounce, subscriber_uuid, campaign_name = found
    return BounceRow(
        id=bounce.id,
        type=bounce.type,
        effective_type=bounce.effective_type,
        reason=bounce.reason,
        status=bounce.status,
        replycode=bounce.replycode,
        diagnostic=bounce.diagnostic,
        feedback_type=bounce.feedback_type,
        source=bounce.source,
        meta=bounce.meta,
        email=bounce.email,
        subscriber_id=bounce.subscriber_id,
        subscriber_uuid=subscriber_uuid,
        campaign_id=bounce.campaign_id,
        campaign_uuid=bounce.campaign_uuid,
        campaign_name=campaign_name,
        created_at=bounce.created_at,
        recorded_at=bounce.recorded_at,
        attributed=bool(bounce.attributed),
    )
