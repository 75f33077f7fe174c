"""Sliding-window rate limits of the public pages, shared by every server process.

An action (a sign-up from a client address, a confirmation mail to an address) is one row of
`rate_events` under the hash of what is limited. `allow()` counts the rows of that key within
each window and records a new one only when every window has room, so a refused attempt
stores nothing and the rows of one key are bounded by its largest limit. Rows older than a
day are deleted as new ones of the same key arrive (`prune()` clears the rest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stmails.db.models import RateEvent
from stmails.db.types import utcnow

# No window is longer than this; older rows only cost space.
HORIZON = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` actions within `length`."""

    length: timedelta
    limit: int


class RateLimited(Exception):
    """An action over its limit; `retry_after` is the seconds until the window has room."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"{what}: too many requests; try again in {retry_after} s")
        self.what = what
        self.retry_after = retry_after


def key_of(kind: str, value: str) -> str:
    """The stored key of `value` limited as `kind` (a hash: no address kept in clear)."""
    return hashlib.sha256(f"{kind}\x00{value}".encode("utf-8", "surrogateescape")).hexdigest()


def allow(
    session: Session,
    kind: str,
    value: str,
    windows: Sequence[Window],
    *,
    now: datetime | None = None,
) -> None:
    """Records one action of `value` as `kind`, or raises RateLimited (recording nothing) when
    a window is full. The caller commits."""
    now = now or utcnow()
    key = key_of(kind, value)
    session.execute(
        delete(RateEvent).where(RateEvent.key == key, RateEvent.created_at < now - HORIZON)
    )
    for window in windows:
        since = now - window.length
        count, oldest = session.execute(
            select(func.count(), func.min(RateEvent.created_at)).where(
                RateEvent.key == key, RateEvent.created_at > since
            )
        ).one()
        if int(count) >= window.limit:
            wait = (oldest + window.length - now).total_seconds() if oldest else 60
            raise RateLimited(kind, max(1, int(wait) + 1))
    session.add(RateEvent(key=key, created_at=now))
    session.flush()


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Deletes every row older than the longest window; returns how many."""
    result = session.execute(
        delete(RateEvent).where(RateEvent.created_at < (now or utcnow()) - HORIZON)
    )
    return int(getattr(result, "rowcount", 0) or 0)
