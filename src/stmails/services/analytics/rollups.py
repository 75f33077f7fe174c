"""Reading the rollups exactly: each figure is the rollup rows plus the deltas not yet folded.

The triggers of `db.rollups` write one delta row per change; `fold()` adds them to the rollups
every few seconds (the analytics worker) and deletes them. A query reads both in one statement,
`UNION ALL`, so what it counts is the same whether a delta has been folded or not.

Campaign keys: a campaign's id, 0 for mail without a campaign (bounces of transactional mail and
of the relay) and -1 for a campaign deleted since, or unknown to stmails (db.rollups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, or_, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from stmails.db import rollups
from stmails.db.dialect import snapshot_options
from stmails.db.models import (
    DOMAIN_COUNTERS,
    HOURLY_COUNTERS,
    REASON_COUNTERS,
    AnalyticsChange,
    AnalyticsDomain,
    AnalyticsDomainMonth,
    AnalyticsHourly,
    AnalyticsReason,
)
from stmails.services.analytics.window import Window

CHANGES = cast(Table, AnalyticsChange.__table__)
HOURLY = cast(Table, AnalyticsHourly.__table__)
REASONS = cast(Table, AnalyticsReason.__table__)
DOMAINS = cast(Table, AnalyticsDomain.__table__)
DOMAIN_MONTHS = cast(Table, AnalyticsDomainMonth.__table__)

NO_CAMPAIGN = 0
GONE = rollups.GONE


@dataclass(frozen=True, slots=True)
class Scope:
    """Which campaign keys a figure counts: `campaigns` (ids), or else every campaign key but
    0 (`campaign_mail`), or all of them."""

    campaigns: tuple[int, ...] | None = None
    campaign_mail: bool = True

    def condition(self, column: Any) -> ColumnElement[bool] | None:
        if self.campaigns is not None:
            return cast(ColumnElement[bool], column.in_(self.campaigns))
        if self.campaign_mail:
            return cast(ColumnElement[bool], column != NO_CAMPAIGN)
        return None


def _where(*conditions: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [c for c in conditions if c is not None]


def _any_nonzero(counters: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(CHANGES.c[name] != 0 for name in counters))


def _folded(
    table: Table,
    keys: Sequence[str],
    counters: Sequence[str],
    window: Window,
    scope: Scope,
    by_day: bool = False,
) -> Any:
    """The rollup `table`'s rows of `window` and `scope`: `keys` then `counters`. The domain
    rollup is read in its own (domain) order unless `by_day` (a few days, through its index by
    day): `day + 0` keeps the planner off that index."""
    if "hour" in table.c:
        period = (table.c.hour >= window.first, table.c.hour < window.end)
    else:
        day = table.c.day if by_day or table is not DOMAINS else table.c.day + 0
        period = (day >= window.first_day, day < window.end_day)
    return select(*(table.c[k] for k in keys), *(table.c[c] for c in counters)).where(
        *_where(*period, scope.condition(table.c.campaign_id))
    )


def _pending(
    keys: Sequence[str], counters: Sequence[str], window: Window, scope: Scope, only: bool
) -> Any:
    """The pending deltas of `window` and `scope` in the shape of a rollup with `keys` (a
    `day` key is computed from the hour); `only`: just the deltas that concern `counters`."""
    columns = [
        (CHANGES.c.hour // 24).label("day") if key == "day" else CHANGES.c[key] for key in keys
    ]
    return select(*columns, *(CHANGES.c[c] for c in counters)).where(
        *_where(
            CHANGES.c.hour >= window.first,
            CHANGES.c.hour < window.end,
            scope.condition(CHANGES.c.campaign_id),
            _any_nonzero(counters) if only else None,
        )
    )


def _source(
    name: str,
    table: Table,
    keys: Sequence[str],
    counters: Sequence[str],
    window: Window,
    scope: Scope,
) -> Any:
    """A subquery of a rollup's rows and the pending deltas, `keys` then `counters`."""
    only = table is not HOURLY
    return union_all(
        _folded(table, keys, counters, window, scope),
        _pending(keys, counters, window, scope, only),
    ).subquery(name)


def hourly(window: Window, scope: Scope, counters: Sequence[str] = HOURLY_COUNTERS) -> Any:
    """A subquery of (hour, campaign_id, *counters) rows of `window` and `scope`: the hourly
    rollup and the pending deltas. Sum it to get figures."""
    return _source("hourly", HOURLY, ("hour", "campaign_id"), counters, window, scope)


def reasons(window: Window, scope: Scope) -> Any:
    """A subquery of (day, campaign_id, reason, source, hard, soft, complaints) rows."""
    window.require_whole_days("reasons and sources")
    keys = ("day", "campaign_id", "reason", "source")
    return _source("reasons", REASONS, keys, REASON_COUNTERS, window, scope)


def domains(window: Window, scope: Scope) -> Any:
    """A subquery of (day, campaign_id, domain, accepted, refused, hard, soft, complaints)
    rows: the domain rollup and the pending deltas (for recounts; `domain_sums` is faster)."""
    window.require_whole_days("domains")
    keys = ("day", "campaign_id", "domain")
    return _source("domains", DOMAINS, keys, DOMAIN_COUNTERS, window, scope)


_EPOCH = date(1970, 1, 1).toordinal()


def month_of_day(day: int) -> int:
    """The calendar month (months since 1970-01) holding `day` (days since 1970-01-01)."""
    when = date.fromordinal(_EPOCH + day)
    return (when.year - 1970) * 12 + when.month - 1


def first_day_of(month: int) -> int:
    """The first day (days since 1970-01-01) of `month` (months since 1970-01)."""
    return date(1970 + month // 12, month % 12 + 1, 1).toordinal() - _EPOCH


def _day_range(start: int, stop: int, scope: Scope) -> Any:
    """The daily domain rollup's rows of days `start` to `stop` (excluded)."""
    edge = Window(start * 24, stop * 24)
    return _folded(DOMAINS, ("domain",), DOMAIN_COUNTERS, edge, scope, by_day=True)


def _domain_parts(window: Window, scope: Scope) -> list[tuple[int, Any]]:
    """(sign, query) pairs whose rows, (domain, *DOMAIN_COUNTERS) times the sign, add up to
    each domain's figures in `window` and `scope`.

    All campaign mail reads the monthly rollup for the months the window covers, and the daily
    one for the rest of a month it covers in part: the days it covers, or, when they are fewer,
    the month minus the days it leaves out (the folded months are the sums of the folded days,
    so either way is exact). One campaign (or a list's) reads the daily rollup."""
    parts: list[tuple[int, Any]] = []
    if scope.campaigns is not None or not scope.campaign_mail:
        parts.append((1, _folded(DOMAINS, ("domain",), DOMAIN_COUNTERS, window, scope)))
    else:
        first, end = window.first_day, window.end_day
        low, high = month_of_day(first), month_of_day(end - 1) + 1
        for month in sorted({low, high - 1}):
            start, stop = first_day_of(month), first_day_of(month + 1)
            inside = (max(start, first), min(stop, end))
            if inside == (start, stop):
                continue
            if inside[1] - inside[0] <= (stop - start) // 2:
                # Fewer days inside than outside: those days, and not the month.
                parts.append((1, _day_range(*inside, scope)))
                if month == low:
                    low += 1
                if month == high - 1:
                    high -= 1
            else:
                for left_out in ((start, inside[0]), (inside[1], stop)):
                    if left_out[0] < left_out[1]:
                        parts.append((-1, _day_range(*left_out, scope)))
        if low < high:
            table = DOMAIN_MONTHS
            columns = (table.c.domain, *(table.c[c] for c in DOMAIN_COUNTERS))
            query = select(*columns).where(table.c.month >= low, table.c.month < high)
            parts.insert(0, (1, query))
    parts.append((1, _pending(("domain",), DOMAIN_COUNTERS, window, scope, True)))
    return parts


def domain_sums(session: Session, window: Window, scope: Scope) -> dict[str, list[int]]:
    """Each recipient domain's DOMAIN_COUNTERS over `window` and `scope`.

    Each part (see `_domain_parts`) is summed in its table's key order (it starts with the
    domain, so no sort of its rows is needed), and the parts added (or taken away) here;
    `snapshot()` makes every read see the same moment."""
    window.require_whole_days("domains")
    out: dict[str, list[int]] = {}
    for sign, part in _domain_parts(window, scope):
        source = part.subquery()
        query = select(source.c.domain, *sums(source, DOMAIN_COUNTERS)).group_by(source.c.domain)
        # fetchall() in one call (iterating a result fetches row by row); the sums are
        # integers on both databases (SUM of INTEGER, COALESCE'd to 0).
        rows = session.execute(query).all()
        if not out and sign > 0:
            out = {domain: values for domain, *values in rows}
            continue
        for domain, *values in rows:
            totals = out.get(domain)
            if totals is None:
                out[domain] = [sign * value for value in values]
            else:
                for index, value in enumerate(values):
                    totals[index] += sign * value
    return out


def snapshot(session: Session) -> None:
    """Makes the reads of `session`'s next transaction see one moment of the database, so that
    figures read in several statements add up while the folder works: REPEATABLE READ on
    PostgreSQL (a SQLite read transaction always does). Without effect once the transaction has
    begun."""
    options = snapshot_options(session)
    if options and not session.in_transaction():
        session.connection(execution_options=options)


def sums(source: Any, counters: Sequence[str]) -> list[Any]:
    """`SUM(counter)` of each of `counters` in `source`, as 0 when there is no row."""
    return [func.coalesce(func.sum(source.c[c]), 0).label(c) for c in counters]


def totals(session: Session, window: Window, scope: Scope) -> dict[str, int]:
    """Every hourly counter summed over `window` and `scope`."""
    source = hourly(window, scope)
    row = session.execute(select(*sums(source, HOURLY_COUNTERS))).one()
    return {name: int(value) for name, value in zip(HOURLY_COUNTERS, row, strict=True)}


def pending_count(session: Session) -> int:
    """How many deltas wait to be folded."""
    return int(session.scalar(select(func.count()).select_from(CHANGES)) or 0)


def fold_pending(sessions: sessionmaker[Session], limit: int = 200_000) -> int:
    """Folds waiting deltas into the rollups, `limit` at most per transaction, until none is
    left (or another process is folding); returns how many were folded."""
    folded = 0
    while True:
        with sessions() as session:
            connection = session.connection(execution_options=snapshot_options(session))
            count = rollups.fold(connection, limit)
            session.commit()
        folded += count
        if count < limit:
            return folded
