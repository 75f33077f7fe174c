"""Mailing lists: CRUD and per-status subscriber counts, for the API (`/api/lists`).

A list's `status` is listmonk's: `active`, or `archived` (kept, but hidden from the public
sign-up forms and the admin's list pickers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    ValidationError,
)
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from stmails.db.models import LIST_OPTINS, LIST_STATUSES, LIST_TYPES, MailingList, SubscriberList
from stmails.db.types import utcnow
from stmails.services.errors import InvalidInput
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

# Subscribers on the list, in any status: listmonk's `subscriber_count`, to order by.
SUBSCRIBER_COUNT = (
    select(func.count())
    .where(SubscriberList.list_id == MailingList.id)
    .correlate(MailingList)
    .scalar_subquery()
)
LIST_ORDER = {
    **{
        name: getattr(MailingList, name)
        for name in ("id", "name", "type", "status", "created_at", "updated_at")
    },
    "subscriber_count": SUBSCRIBER_COUNT,
}


# The longest text a list field takes.
MAX_TEXT = 10_000
_Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)] | None


class ListBody(BaseModel):
    """The list fields a listmonk create or update body may carry, type-checked (their meaning
    is `create`'s and `update_list`'s). Checked in this order; the first error is reported."""

    model_config = ConfigDict(extra="ignore")

    name: _Text = None
    type: _Text = None
    optin: _Text = None
    status: _Text = None
    description: _Text = None
    # null: no tags.
    tags: Annotated[list[StrictStr], Strict(), BeforeValidator(none_is_empty)] = []


# What a refused field says (the messages the API has always answered with).
_BODY_WORDING = {
    "string_type": "must be a string",
    "string_too_long": f"longer than {MAX_TEXT} characters",
    "tags": "must be an array of strings",
}


def body_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The list fields present in a listmonk create/update body, type-checked (keyword arguments
    of `create` and `update_list`); a text field sent empty or null is left out, as listmonk's
    update keeps it. InvalidInput naming the first wrong field."""
    try:
        valid = ListBody.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc, _BODY_WORDING) from None
    fields = {name: getattr(valid, name) for name in valid.model_fields_set}
    return {name: value for name, value in fields.items() if value or name == "tags"}


def _check(
    name: str | None, list_type: str | None, optin: str | None, status: str | None = None
) -> None:
    if name is not None and not name.strip():
        raise InvalidInput("name", "is required")
    if name is not None and len(name) > 500:
        raise InvalidInput("name", "longer than 500 characters")
    if list_type is not None and list_type not in LIST_TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(LIST_TYPES)}")
    if optin is not None and optin not in LIST_OPTINS:
        raise InvalidInput("optin", f"must be one of {', '.join(LIST_OPTINS)}")
    if status is not None and status not in LIST_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(LIST_STATUSES)}")


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
    status: str = "active",
    tags: Sequence[str] = (),
    description: str = "",
    now: datetime | None = None,
) -> MailingList:
    """A new list."""
    _check(name, type, optin, status)
    now = now or utcnow()
    mlist = MailingList(
        name=name.strip(),
        type=type,
        optin=optin,
        status=status,
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


def first_names(session: Session, *, limit: int) -> list[tuple[int, str]]:
    """`(id, name)` of the first `limit` lists in id order, any status: a bounded list
    picker (the admin's role grants), without loading whole rows."""
    rows = session.execute(
        select(MailingList.id, MailingList.name).order_by(MailingList.id).limit(limit)
    )
    return [(int(i), str(n)) for i, n in rows]


def names_of(session: Session, ids: Collection[int]) -> dict[int, str]:
    """The names of the lists with `ids`, by id; ids of no list are left out."""
    if not ids:
        return {}
    rows = session.execute(
        select(MailingList.id, MailingList.name).where(MailingList.id.in_(list(ids)))
    )
    return {int(i): str(n) for i, n in rows}


def existing_ids(session: Session, ids: Collection[int]) -> set[int]:
    """Which of `ids` are lists (of any type or status): tells an unknown id from one
    that exists but does not fit."""
    if not ids:
        return set()
    return set(session.scalars(select(MailingList.id).where(MailingList.id.in_(list(ids)))))


def update_list(
    session: Session,
    mlist: MailingList,
    *,
    name: str | None = None,
    type: str | None = None,
    optin: str | None = None,
    status: str | None = None,
    tags: Sequence[str] | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> MailingList:
    """Change the given fields of `mlist`."""
    _check(name, type, optin, status)
    if name is not None:
        mlist.name = name.strip()
    if type is not None:
        mlist.type = type
    if optin is not None:
        mlist.optin = optin
    if status is not None:
        mlist.status = status
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


def delete_matching(session: Session, search: str, within: Collection[int] | None = None) -> int:
    """Delete the lists whose name contains `search` (every list when it is blank), only
    among `within` when given (listmonk's `DELETE /api/lists?query=`); returns how many."""
    statement = delete(MailingList).where(*_name_and_scope(search, within))
    result = session.execute(statement.execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def _name_and_scope(search: str, within: Collection[int] | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if search.strip():
        needle = search.strip().lower()
        conditions.append(func.lower(MailingList.name).contains(needle, autoescape=True))
    if within is not None:
        conditions.append(MailingList.id.in_(list(within)))
    return conditions


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
    optin: str | None = None,
    status: str | None = None,
    within: Collection[int] | None = None,
    order_by: str = "id",
    order: str = "asc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[MailingList]:
    """Lists whose name contains `search` (any case), of `list_type`, `optin` and `status`,
    carrying every one of `tags` (listmonk's filters), among `within` when given."""
    terms = ordering(LIST_ORDER, order_by, order, MailingList.id)
    check_paging(page, per_page)
    _check(None, list_type, optin, status)
    query = select(MailingList).where(*_name_and_scope(search, within))
    if list_type:
        query = query.where(MailingList.type == list_type)
    if optin:
        query = query.where(MailingList.optin == optin)
    if status:
        query = query.where(MailingList.status == status)
    if tags:
        query = query.where(all_tags(MailingList.tags, tags))
    total = count_of(session, query)
    ordered = query.order_by(*terms)
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)


def names(session: Session) -> list[tuple[int, str]]:
    """Every list as (id, name), in `by_name`'s order: what a form that picks lists offers."""
    return [(found.id, found.name) for found in by_name(session)]


def by_name(session: Session) -> list[MailingList]:
    """Every list, by name then id: the choices of the admin pages' list pickers."""
    return list(session.scalars(select(MailingList).order_by(MailingList.name, MailingList.id)))
