"""Reading and deleting bounce records for the API (recording is services.bounces.record()).

No commits here; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.orm import Session

from stmails.db.models import BOUNCE_TYPES, Bounce, Campaign, Subscriber, SubscriberList
from stmails.db.types import normalize_email, utcnow
from stmails.services.subscriber_admin import Invalid

# listmonk's order_by values, plus stmails' own.
ORDER_FIELDS = ("id", "email", "campaign_name", "source", "created_at", "type", "reason")


@dataclass(frozen=True, slots=True)
class BounceFilter:
    """GET /api/bounces filters; empty values do not filter."""

    campaign_id: int | None = None
    subscriber_id: int | None = None
    source: str = ""
    type: str = ""
    reason: str = ""
    email: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class BounceRow:
    """A bounce with its subscriber's uuid and its campaign's id and name."""

    bounce: Bounce
    subscriber_uuid: str | None
    campaign: tuple[int, str] | None


def _conditions(f: BounceFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.campaign_id is not None:
        conditions.append(Bounce.campaign_id == f.campaign_id)
    if f.subscriber_id is not None:
        conditions.append(Bounce.subscriber_id == f.subscriber_id)
    if f.source:
        conditions.append(Bounce.source == f.source)
    if f.type:
        if f.type not in BOUNCE_TYPES:
            raise Invalid(f"type: one of {', '.join(BOUNCE_TYPES)}")
        conditions.append(Bounce.type == f.type)
    if f.reason:
        conditions.append(Bounce.reason == f.reason)
    if f.email:
        conditions.append(func.lower(Bounce.email) == normalize_email(f.email))
    if f.since is not None:
        conditions.append(Bounce.created_at >= f.since)
    if f.until is not None:
        conditions.append(Bounce.created_at <= f.until)
    return conditions


def _select(f: BounceFilter) -> Select[tuple[Bounce, str | None, int | None, str | None]]:
    return (
        select(Bounce, Subscriber.uuid, Campaign.id, Campaign.name)
        .outerjoin(Subscriber, Subscriber.id == Bounce.subscriber_id)
        .outerjoin(Campaign, Campaign.id == Bounce.campaign_id)
        .where(*_conditions(f))
    )


def _ordered(
    statement: Select[tuple[Bounce, str | None, int | None, str | None]], order_by: str, order: str
) -> Select[tuple[Bounce, str | None, int | None, str | None]]:
    if order_by not in ORDER_FIELDS:
        raise Invalid(f"order_by: one of {', '.join(ORDER_FIELDS)}")
    column: Any = Campaign.name if order_by == "campaign_name" else getattr(Bounce, order_by)
    direction = column.desc() if order == "desc" else column.asc()
    tie = Bounce.id.desc() if order == "desc" else Bounce.id.asc()
    return statement.order_by(direction, tie)


def _row(values: Any) -> BounceRow:
    bounce, subscriber_uuid, campaign_id, campaign_name = values
    campaign = (campaign_id, campaign_name or "") if campaign_id is not None else None
    return BounceRow(bounce, subscriber_uuid, campaign)


def search(
    session: Session,
    f: BounceFilter,
    order_by: str,
    order: str,
    offset: int,
    limit: int | None,
) -> tuple[list[BounceRow], int]:
    """One page of bounces matching `f`, and the total."""
    total = session.scalar(select(func.count()).select_from(Bounce).where(*_conditions(f))) or 0
    statement = _ordered(_select(f), order_by, order).offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return [_row(values) for values in session.execute(statement)], total


def stream(
    session: Session, f: BounceFilter, order_by: str, order: str, chunk: int = 500
) -> Iterator[BounceRow]:
    """Every bounce matching `f`, fetched `chunk` rows at a time (for exports)."""
    statement = _ordered(_select(f), order_by, order).execution_options(yield_per=chunk)
    for values in session.execute(statement):
        yield _row(values)


def get(session: Session, bounce_id: int) -> BounceRow | None:
    """One bounce, or None."""
    values = session.execute(_select(BounceFilter()).where(Bounce.id == bounce_id)).first()
    return None if values is None else _row(values)


def delete_ids(session: Session, ids: list[int]) -> int:
    """Deletes these bounce records; returns how many."""
    result = session.execute(delete(Bounce).where(Bounce.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_all(session: Session) -> int:
    """Deletes every bounce record; returns how many."""
    result = session.execute(delete(Bounce))
    return int(getattr(result, "rowcount", 0) or 0)


def blocklist_bounced(session: Session) -> int:
    """listmonk's `PUT /api/bounces/blocklist`: blocklists every subscriber with a bounce and
    unsubscribes them from every list. Returns how many subscribers it blocklisted."""
    bounced = select(Bounce.subscriber_id).where(Bounce.subscriber_id.is_not(None)).distinct()
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(bounced), Subscriber.status != "blocklisted")
        .values(status="blocklisted", updated_at=utcnow())
    )
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.subscriber_id.in_(bounced))
        .values(status="unsubscribed", updated_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
