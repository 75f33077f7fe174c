"""The login throttle and the cap on concurrent password hashing (issue 11).

Failed sign-ins are counted per client address and per user name, in the database so that every
server process sees the same counts. The first `free` failures of a key cost nothing; each one
after that locks the key for `base` seconds, doubled per further failure up to `ceiling`. While
a key is locked, attempts are refused before any password is hashed and do not extend the lock
(so a stranger cannot keep a user locked out for longer than the ceiling by trying). A key's
count starts again `window` after its last failure; a successful sign-in clears the user name's
count (not the address's: a valid account must not launder guesses at other names).

Password hashing (scrypt, 16 MB and tens of milliseconds each) is capped per process by
`HashingGate`: a check that cannot start within a short wait is refused as `Busy`, which the web
layer answers 503 with Retry-After, instead of queueing without bound.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import LoginThrottle
from stmails.db.types import utcnow

# Expired counts are deleted once every this many recorded failures.
PURGE_EVERY = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """Free failures, then a lock of `base` seconds doubling up to `ceiling`; forgotten after
    `window` seconds without a failure."""

    free: int
    base: float = 30.0
    ceiling: float = 900.0
    window: float = 3600.0

    def lock_after(self, failures: int) -> float:
        """Seconds the key is locked after its `failures`-th failure (0 while free)."""
        if failures < self.free:
            return 0.0
        return min(self.ceiling, self.base * 2.0 ** (failures - self.free))


# Several people may share one address (an office behind NAT), so addresses get more room.
USER_POLICY = Policy(free=5)
ADDRESS_POLICY = Policy(free=20)


class Throttled(Exception):
    """Too many failed sign-ins for this user or address: retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"too many failed sign-ins for this user or address; retry in {self.retry_after} s"
        )


class Busy(Exception):
    """Too many password checks are running in this process; retry shortly."""

    retry_after = 1


def _key(kind: str, value: str) -> str:
    # Names are compared case-insensitively (as people type them) and hashed, so that any
    # length of input makes a key of fixed size.
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return _key("ip", address)


def user_key(username: str) -> str:
    """The throttle key of a user name."""
    return _key("user", username)


def _keys(address: str | None, username: str | None) -> list[tuple[str, Policy]]:
    keys: list[tuple[str, Policy]] = []
    if address:
        keys.append((address_key(address), ADDRESS_POLICY))
    if username:
        keys.append((user_key(username), USER_POLICY))
    return keys


def check(
    session: Session, address: str | None, username: str | None, *, now: datetime | None = None
) -> None:
    """Raises Throttled when the address or the user name is locked now; reads only."""
    now = now or utcnow()
    keys = _keys(address, username)
    if not keys:
        return
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_([k for k, _ in keys]))
    ).all()
    wait = max(
        ((row.locked_until - now).total_seconds() for row in rows if row.locked_until),
        default=0.0,
    )
    if wait > 0:
        raise Throttled(wait)


_purge_counter = 0
_purge_lock = threading.Lock()


def record_failure(
    session: Session, address: str | None, username: str | None, *, now: datetime | None = None
) -> float:
    """Counts a failed sign-in for the address and the user name; returns how many seconds
    the stricter of the two is now locked (0 while free). The caller commits."""
    global _purge_counter
    now = now or utcnow()
    longest = 0.0
    for key, policy in _keys(address, username):
        row = session.get(LoginThrottle, key, with_for_update=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0, last_failure_at=now)
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                # Another process counted the first failure at the same moment.
                row = session.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
                if row is None:
                    continue
        if (now - row.last_failure_at).total_seconds() > policy.window:
            row.failures = 0
        if row.locked_until is not None and row.locked_until > now:
            # Attempts refused while locked never reach here; one that raced the lock in
            # does not lengthen it.
            longest = max(longest, (row.locked_until - now).total_seconds())
            continue
        row.failures += 1
        row.last_failure_at = now
        lock = policy.lock_after(row.failures)
        row.locked_until = now + timedelta(seconds=lock) if lock else None
        longest = max(longest, lock)
    session.flush()
    with _purge_lock:
        _purge_counter += 1
        due = _purge_counter % PURGE_EVERY == 0
    if due:
        forget_before = now - timedelta(seconds=max(USER_POLICY.window, ADDRESS_POLICY.window))
        session.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < forget_before))
    return longest


def record_success(session: Session, username: str) -> None:
    """Clears the failure count of `username` after a successful sign-in (caller commits)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == user_key(username)))


def failures(session: Session, *, address: str | None = None, username: str | None = None) -> int:
    """The failures counted now for an address or a user name (for pages and tests)."""
    key = address_key(address) if address else user_key(username or "")
    row = session.get(LoginThrottle, key)
    return row.failures if row is not None else 0


class HashingGate:
    """At most `limit` password hashes at once in this process; `hold()` waits up to `wait`
    seconds for a turn and raises Busy when none comes."""

    def __init__(self, limit: int, wait: float = 2.0) -> None:
        self.limit = limit
        self.wait = wait
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A turn to hash a password (from a worker thread: it may block up to `wait`)."""
        if not self._slots.acquire(timeout=self.wait):
            raise Busy("too many sign-ins are being checked at once; retry shortly")
        try:
            yield
        finally:
            self._slots.release()
