"""Paging and filters shared by the listing services (listmonk's page, per_page, total)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, Text, and_, cast, delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from stmails.services.errors import InvalidInput, NotFound

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Largest page the listing services hand out (per_page=None still means "all").
MAX_PER_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; `per_page` None means every result is in `results`."""

    results: list[T]
    total: int
    page: int
    per_page: int | None


def check_paging(page: int, per_page: int | None) -> None:
    """Raise InvalidInput for a page below 1 or a page size outside 1..MAX_PER_PAGE."""
    if page < 1:
        raise InvalidInput("page", "must be 1 or more")
    if per_page is not None and not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput("per_page", f"must be between 1 and {MAX_PER_PAGE}")


def count_of(session: Session, query: Select[*Ts]) -> int:
    """How many rows `query` returns (ordering and paging ignored)."""
    inner = query.order_by(None).limit(None).offset(None).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def paged(query: Select[*Ts], page: int, per_page: int | None) -> Select[*Ts]:
    """`query` limited to one page (unchanged when per_page is None)."""
    if per_page is None:
        return query
    return query.offset((page - 1) * per_page).limit(per_page)


def any_tag(column: Any, tags: Sequence[str]) -> ColumnElement[bool]:
    """A condition: the JSON array of strings in `column` holds any of `tags` (any case).

    Matching the array's JSON text keeps this portable across SQLite and PostgreSQL.
    """
    text_of_tags = func.lower(cast(column, Text))
    return or_(*(text_of_tags.contains(json.dumps(t.lower())) for t in tags))


def all_tags(column: Any, tags: Sequence[str]) -> ColumnElement[bool]:
    """A condition: the JSON array of strings in `column` holds every one of `tags` (any case),
    as listmonk's tag filters do."""
    text_of_tags = func.lower(cast(column, Text))
    return and_(*(text_of_tags.contains(json.dumps(t.lower()), autoescape=True) for t in tags))


def ordering(
    columns: Mapping[str, Any], order_by: str, order: str, tiebreak: Any
) -> tuple[Any, Any]:
    """ORDER BY terms for a whitelisted `order_by` name and `order` (asc|desc), ties broken by
    `tiebreak` in the same direction; InvalidInput names the bad parameter."""
    column = columns.get(order_by)
    if column is None:
        raise InvalidInput("order_by", f"must be one of {', '.join(columns)}")
    if order.lower() not in ("asc", "desc"):
        raise InvalidInput("order", "must be asc or desc")
    if order.lower() == "asc":
        return column.asc(), tiebreak.asc()
    return column.desc(), tiebreak.desc()


def delete_by_ids(
    session: Session, id_column: InstrumentedAttribute[int], ids: Iterable[int]
) -> int:
    """Delete the rows of `id_column`'s table whose id is in `ids`; returns how many."""
    result = session.execute(
        delete(id_column.class_)
        .where(id_column.in_(list(ids)))
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


M = TypeVar("M")


def get_or_404(session: Session, model: type[M], object_id: int, what: str) -> M:
    """The `model` row with primary key `object_id`; NotFound("<what> <id> not found") if none."""
    found = session.get(model, object_id)
    if found is None:
        raise NotFound(f"{what} {object_id} not found")
    return found
