"""Managing mailing lists as listmonk's API does. Functions never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from stmails.db.models import LIST_OPTINS, LIST_TYPES, MailingList, SubscriberList
from stmails.db.types import utcnow
from stmails.services.subscriber_admin import Invalid

ORDER_FIELDS = ("id", "name", "type", "created_at", "updated_at")
MAX_TAGS = 100


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and len(t) <= 200 for t in value):
        raise Invalid("tags: must be an array of strings")
    if len(value) > MAX_TAGS:
        raise Invalid(f"tags: more than {MAX_TAGS}")
    return [t.strip() for t in value if t.strip()]


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("name: required")
    if len(value) > 500:
        raise Invalid("name: longer than 500 characters")
    return value.strip()


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"{field}: one of {', '.join(allowed)}")
    return str(value)


def create(session: Session, body: dict[str, Any]) -> MailingList:
    """A new list from listmonk's fields: name, type, optin, tags, description."""
    item = MailingList(
        name=_name(body.get("name")),
        type=_choice(body.get("type") or "private", "type", LIST_TYPES),
        optin=_choice(body.get("optin") or "single", "optin", LIST_OPTINS),
        tags=_tags(body.get("tags")),
        description=str(body.get("description") or ""),
    )
    session.add(item)
    session.flush()
    return item


def update(session: Session, item: MailingList, body: dict[str, Any]) -> MailingList:
    """Changes the fields present in `body` (listmonk's PUT takes any subset)."""
    if "name" in body:
        item.name = _name(body["name"])
    if "type" in body:
        item.type = _choice(body["type"], "type", LIST_TYPES)
    if "optin" in body:
        item.optin = _choice(body["optin"], "optin", LIST_OPTINS)
    if "tags" in body:
        item.tags = _tags(body["tags"])
    if "description" in body:
        item.description = str(body["description"] or "")
    item.updated_at = utcnow()
    session.flush()
    return item


def delete_list(session: Session, list_id: int) -> None:
    """Deletes the list and its subscriptions."""
    session.execute(delete(SubscriberList).where(SubscriberList.list_id == list_id))
    session.execute(delete(MailingList).where(MailingList.id == list_id))


def subscriber_counts(session: Session, list_ids: list[int]) -> dict[int, int]:
    """How many subscribers (not unsubscribed) each list has."""
    counts = dict.fromkeys(list_ids, 0)
    if not list_ids:
        return counts
    rows = session.execute(
        select(SubscriberList.list_id, func.count())
        .where(SubscriberList.list_id.in_(list_ids), SubscriberList.status != "unsubscribed")
        .group_by(SubscriberList.list_id)
    ).tuples()
    counts.update({list_id: int(count) for list_id, count in rows})
    return counts


def search(
    session: Session,
    query: str,
    types: list[str],
    tags: list[str],
    order_by: str,
    order: str,
    offset: int,
    limit: int | None,
) -> tuple[list[MailingList], int]:
    """One page of lists matching a name search, types and tags, and the total."""
    if order_by not in ORDER_FIELDS:
        raise Invalid(f"order_by: one of {', '.join(ORDER_FIELDS)}")
    conditions: list[ColumnElement[bool]] = []
    if query.strip():
        conditions.append(func.lower(MailingList.name).contains(query.strip().lower()))
    for kind in types:
        _choice(kind, "status", LIST_TYPES)
    if types:
        conditions.append(MailingList.type.in_(types))
    statement = select(MailingList).where(*conditions)
    rows = list(session.scalars(statement))
    if tags:
        # Tags are a JSON array: filtered here, portably, after the indexed conditions.
        rows = [r for r in rows if any(t in (r.tags or []) for t in tags)]
    reverse = order == "desc"
    rows.sort(key=lambda r: (getattr(r, order_by), r.id), reverse=reverse)
    total = len(rows)
    end = None if limit is None else offset + limit
    return rows[offset:end], total
