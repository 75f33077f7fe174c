"""Mailing lists: CRUD and per-status subscriber counts, for the API (`/api/lists`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import LIST_OPTINS, LIST_TYPES, MailingList, SubscriberList
from stmails.db.types import utcnow
from stmails.services.errors import InvalidInput
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

LIST_ORDER = {
    name: getattr(MailingList, name) for name in ("id", "name", "type", "created_at", "updated_at")
}


def _check(name: str | None, list_type: str | None, optin: str | None) -> None:
    if name is not None and not name.strip():
        raise InvalidInput("name", "is required")
    if name is not None and len(name) > 500:
        raise InvalidInput("name", "longer than 500 characters")
    if list_type is not None and list_type not in LIST_TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(LIST_TYPES)}")
    if optin is not None and optin not in LIST_OPTINS:
        raise InvalidInput("optin", f"must be one of {', '.join(LIST_OPTINS)}")


def _check_tags(tags: Sequence[str] | None) -> list[str] | None:
    if tags is None:
        return None
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("tags", "must be a list of strings")
    return [t.strip() for t in tags if t.strip()]


def create(
    session: Session,
    *,
    name: str,
    type: str = "private",
    optin: str = "single",
    tags: Sequence[str] = (),
    description: str = "",
    now: datetime | None = None,
) -> MailingList:
    """A new list."""
    _check(name, type, optin)
    now = now or utcnow()
    mlist = MailingList(
        name=name.strip(),
        type=type,
        optin=optin,
        tags=_check_tags(tags) or [],
        description=description,
        created_at=now,
        updated_at=now,
    )
    session.add(mlist)
    session.flush()
    return mlist


def get(session: Session, list_id: int) -> MailingList:
    """The list with `list_id`; NotFound otherwise."""
    return get_or_404(session, MailingList, list_id, "list")


def update_list(
    session: Session,
    mlist: MailingList,
    *,
    name: str | None = None,
    type: str | None = None,
    optin: str | None = None,
    tags: Sequence[str] | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> MailingList:
    """Change the given fields of `mlist`."""
    _check(name, type, optin)
    if name is not None:
        mlist.name = name.strip()
    if type is not None:
        mlist.type = type
    if optin is not None:
        mlist.optin = optin
    checked = _check_tags(tags)
    if checked is not None:
        mlist.tags = checked
    if description is not None:
        mlist.description = description
    mlist.updated_at = now or utcnow()
    session.flush()
    return mlist


def delete_lists(session: Session, ids: Iterable[int]) -> int:
    """Delete lists (their subscriptions go too); returns how many."""
    return delete_by_ids(session, MailingList.id, ids)


@dataclass(frozen=True, slots=True)
class ListCounts:
    """Subscribers on a list, in total and by subscription status."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def counts(session: Session, list_ids: Sequence[int]) -> dict[int, ListCounts]:
    """Subscriber counts of each list (lists without subscribers get zeros)."""
    totals: dict[int, dict[str, int]] = {i: {} for i in list_ids}
    rows = session.execute(
        select(SubscriberList.list_id, SubscriberList.status, func.count())
        .where(SubscriberList.list_id.in_(list(list_ids)))
        .group_by(SubscriberList.list_id, SubscriberList.status)
    )
    for list_id, status, n in rows:
        totals[list_id][status] = int(n)
    return {i: ListCounts(sum(by.values()), by) for i, by in totals.items()}


def list_lists(
    session: Session,
    *,
    search: str = "",
    tags: Sequence[str] = (),
    list_type: str | None = None,
    order_by: str = "id",
    order: str = "asc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[MailingList]:
    """Lists whose name contains `search` (any case), of `list_type`, carrying any of `tags`."""
    terms = ordering(LIST_ORDER, order_by, order, MailingList.id)
    check_paging(page, per_page)
    query = select(MailingList)
    if search.strip():
        query = query.where(func.lower(MailingList.name).contains(search.strip().lower()))
    if list_type:
        query = query.where(MailingList.type == list_type)
    if tags:
        query = query.where(any_tag(MailingList.tags, tags))
    total = count_of(session, query)
    ordered = query.order_by(*terms)
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)
