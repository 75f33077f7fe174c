"""Searching the suppression list: the API's and admin pages' filters, and exports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from stmails.db.models import Suppression
from stmails.db.types import email_domain, email_hash


def entries_for(session: Session, email: str) -> list[Suppression]:
    """Every entry (active or expired) that concerns `email`: its hash or its domain."""
    domain = email_domain(email)
    query = select(Suppression).where(
        or_(
            Suppression.email_hash == email_hash(email),
            and_(Suppression.domain == domain, Suppression.email_hash.is_(None)),
        )
    )
    return list(session.scalars(query.order_by(Suppression.id)))


@dataclass(frozen=True)
class SearchFilters:
    """Filters of GET /api/suppressions; empty values do not filter."""

    reason: str = ""
    source: str = ""
    scope: str = ""
    list_id: int | None = None
    kind: str = ""  # "address", "domain" or "hash"
    since: datetime | None = None
    until: datetime | None = None
    query: str = ""


def _filtered(filters: SearchFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.reason:
        conditions.append(Suppression.reason == filters.reason)
    if filters.source:
        conditions.append(Suppression.source == filters.source)
    if filters.scope:
        conditions.append(Suppression.scope == filters.scope)
    if filters.list_id is not None:
        conditions.append(Suppression.list_id == filters.list_id)
    if filters.kind == "domain":
        conditions.append(Suppression.domain.is_not(None))
    elif filters.kind == "address":
        conditions.append(Suppression.email.is_not(None))
    elif filters.kind == "hash":
        conditions.append(and_(Suppression.email.is_(None), Suppression.email_hash.is_not(None)))
    if filters.since is not None:
        conditions.append(Suppression.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Suppression.created_at < filters.until)
    if filters.query:
        like = "%" + filters.query.lower().replace("%", "").replace("_", "") + "%"
        conditions.append(or_(Suppression.email.like(like), Suppression.domain.like(like)))
    return conditions


def search(
    session: Session, filters: SearchFilters, *, offset: int = 0, limit: int | None = 100
) -> tuple[list[Suppression], int]:
    """Entries matching `filters`, newest first, and the total count; `limit=None` for all."""
    conditions = _filtered(filters)
    total = session.scalar(select(func.count()).select_from(Suppression).where(*conditions)) or 0
    query = select(Suppression).where(*conditions).order_by(Suppression.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query)), int(total)


def iterate(session: Session, filters: SearchFilters, chunk: int = 5000) -> Iterable[Suppression]:
    """Every entry matching `filters` by ascending id, read in chunks (for exports)."""
    conditions = _filtered(filters)
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(Suppression)
                .where(*conditions, Suppression.id > after)
                .order_by(Suppression.id)
                .limit(chunk)
            )
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].id
        session.expunge_all()
