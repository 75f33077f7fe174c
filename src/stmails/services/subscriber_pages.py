"""Subscribers one screen at a time for the admin UI: keyset paging, newest first.

`GET /api/subscribers` pages with OFFSET and counts every match (listmonk's envelope); over
100k+ subscribers that costs a scan per request. The admin page instead walks the primary key:
each screen asks for the rows below the last id shown (`before`), one more than it shows to know
whether another screen follows, and counts only when that is cheap (no filter: the table's row
count from its primary key). The filters are the API's: `search`, the parsed `query` condition,
`list_ids` with `subscription_status`.

The API's listing and bulk selections, and the CSV export's chunks, are read here too, from
the filters as plain values (`Selection`, a caller's permitted list ids): the web layer builds
no SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from stmails.db.dialect import contains_text, name_of
from stmails.db.models import Subscriber
from stmails.services.pages import Page
from stmails.services.subscriber_query import subscriber_condition
from stmails.services.subscribers import list_subscribers, matching, on_lists

MAX_SCREEN = 500


@dataclass(frozen=True, slots=True)
class Screen:
    """One screen of subscribers: `rows` (newest first), the id to continue `before` (None on
    the last screen), and the total when it was cheap to know (None otherwise)."""

    rows: list[Subscriber]
    next_before: int | None
    total: int | None


def search_term(search: str, dialect: str) -> ColumnElement[bool]:
    """The API's `search` condition (services.subscribers.matching): part of the name or
    address in any case, written for the dialect (db.dialect.contains_text)."""
    return contains_text(dialect, (Subscriber.email, Subscriber.name), search)


def filters(
    *,
    condition: ColumnElement[bool] | None = None,
    search: str = "",
    list_ids: Sequence[int] = (),
    subscription_status: str | None = None,
    dialect: str = "",
) -> list[ColumnElement[bool]]:
    """The WHERE terms of the API's subscriber filters (`dialect`: the database's)."""
    terms: list[ColumnElement[bool]] = []
    if condition is not None:
        terms.append(condition)
    if search.strip():
        terms.append(search_term(search, dialect))
    if list_ids:
        terms.append(on_lists(list_ids, subscription_status))
    return terms


def screen(
    session: Session,
    terms: Sequence[ColumnElement[bool]],
    *,
    before: int | None = None,
    size: int = 50,
) -> Screen:
    """Up to `size` subscribers matching every term with an id below `before` (all when
    None), newest first."""
    size = max(1, min(size, MAX_SCREEN))
    query = select(Subscriber).where(*terms)
    if before is not None:
        query = query.where(Subscriber.id < before)
    found = list(session.scalars(query.order_by(Subscriber.id.desc()).limit(size + 1)))
    more = len(found) > size
    rows = found[:size]
    total = None
    if not terms:
        total = int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)
    return Screen(rows, rows[-1].id if more and rows else None, total)


def matching_ids(session: Session, terms: Sequence[ColumnElement[bool]]) -> list[int]:
    """Every subscriber id matching the terms (a bulk action over a whole selection)."""
    return list(session.scalars(select(Subscriber.id).where(*terms).order_by(Subscriber.id)))


# --- selections built from plain values ------------------------------------------------------
# The web layer hands over the filters as given (and the caller's permitted lists); the
# conditions are built here, so it holds no SQL.


@dataclass(frozen=True, slots=True)
class Selection:
    """The API's subscriber filters as plain values: `query` (listmonk's expression, parsed by
    services.subscriber_query; blank for none), `search`, `list_ids` with
    `subscription_status`."""

    query: str = ""
    search: str = ""
    list_ids: tuple[int, ...] = ()
    subscription_status: str | None = None

    def terms(self, session: Session) -> list[ColumnElement[bool]]:
        """The WHERE terms on this session's database (QueryError for a query that does not
        parse)."""
        condition = subscriber_condition(session, self.query) if self.query.strip() else None
        return filters(
            condition=condition,
            search=self.search,
            list_ids=self.list_ids,
            subscription_status=self.subscription_status,
            dialect=name_of(session),
        )


def check_selection(session: Session, selection: Selection) -> None:
    """Parses the selection's query without running it: QueryError when it does not parse."""
    selection.terms(session)


def screen_of(
    session: Session, selection: Selection, *, before: int | None = None, size: int = 50
) -> Screen:
    """`screen` of the subscribers `selection` matches."""
    return screen(session, selection.terms(session), before=before, size=size)


def ids_of(session: Session, selection: Selection) -> list[int]:
    """`matching_ids` of `selection`: every subscriber id it matches, in id order."""
    return matching_ids(session, selection.terms(session))


def rows_after(session: Session, selection: Selection, after: int, size: int) -> list[Subscriber]:
    """Up to `size` subscribers `selection` matches with an id above `after`, in id order (an
    export walking the key one chunk at a time)."""
    return list(
        session.scalars(
            select(Subscriber)
            .where(*selection.terms(session), Subscriber.id > after)
            .order_by(Subscriber.id)
            .limit(size)
        )
    )


def _scoped(
    session: Session, query: str, within: Collection[int] | None
) -> ColumnElement[bool] | None:
    # The parsed query, narrowed to the subscribers of `within` when given.
    condition = subscriber_condition(session, query) if query.strip() else None
    if within is None:
        return condition
    mine = on_lists(list(within))
    return mine if condition is None else and_(condition, mine)


def api_page(
    session: Session,
    *,
    query: str = "",
    within: Collection[int] | None = None,
    list_ids: Sequence[int] = (),
    subscription_status: str | None = None,
    search: str = "",
    order_by: str = "id",
    order: str = "asc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[Subscriber]:
    """listmonk's `GET /api/subscribers` listing (services.subscribers.list_subscribers) for
    the `query` text: parsed here (QueryError), and with `within` (a list-scoped caller's
    lists) and no `list_ids`, only the subscribers on one of `within`."""
    return list_subscribers(
        session,
        condition=_scoped(session, query, None if list_ids else within),
        list_ids=list_ids,
        subscription_status=subscription_status,
        search=search,
        order_by=order_by,
        order=order,
        page=page,
        per_page=per_page,
    )


def bulk_ids(
    session: Session,
    *,
    query: str = "",
    search: str = "",
    list_ids: Sequence[int] = (),
    subscription_status: str | None = None,
    within: Collection[int] | None = None,
) -> list[int]:
    """Ids of the subscribers a query-based bulk action selects (in no particular order): the
    `query` (parsed here, QueryError) and `search` when given; on `list_ids` (with
    `subscription_status`) when given, else on `within` (a list-scoped caller's lists) when
    given."""
    statement = select(Subscriber.id)
    if query:
        statement = statement.where(subscriber_condition(session, query))
    if search:
        statement = statement.where(matching(search))
    if list_ids:
        statement = statement.where(on_lists(list_ids, subscription_status))
    elif within is not None:
        statement = statement.where(on_lists(list(within)))
    return list(session.scalars(statement))
