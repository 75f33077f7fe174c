"""The send-path check: is an address suppressed, and by which entry.

Every send path checks its recipients just before SMTP: the campaign sender in batches
(`check_batch_detail()`), transactional mail and the relay per message (`check_batch()`,
`find()`, `is_suppressed()`). Each address is one probe of a unique index, whatever the list
holds (`benchmarks/suppression_lookup.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any, cast

from sqlalchemy import ColumnElement, bindparam, false, or_, select
from sqlalchemy.orm import Session

from stmails.db.models import Suppression
from stmails.db.prepared import PreparedIn
from stmails.db.types import email_domain, email_hash, normalize_email, utcnow
from stmails.services.suppression.entries import GLOBAL


def lookup(
    session: Session, email: str, *, list_id: int | None = None, now: datetime | None = None
) -> Suppression | None:
    """The active entry that blocks `email` (globally, or for `list_id`), else None.

    Address entries win over domain entries; among them the oldest is returned.
    """
    now = now or utcnow()
    list_scopes = [GLOBAL] if list_id is None else [GLOBAL, list_id]
    domain = email_domain(email)
    matches = or_(
        Suppression.email_hash == email_hash(email),
        Suppression.domain == domain if domain else false(),
    )
    query = (
        select(Suppression)
        .where(
            matches,
            Suppression.list_id.in_(list_scopes),
            or_(Suppression.expires_at.is_(None), Suppression.expires_at > now),
        )
        .order_by(Suppression.domain.is_not(None), Suppression.created_at, Suppression.id)
    )
    return session.scalars(query).first()


def is_suppressed(
    session: Session, email: str, *, list_id: int | None = None, now: datetime | None = None
) -> bool:
    """True when `email` must not be mailed (globally, or on `list_id`)."""
    return lookup(session, email, list_id=list_id, now=now) is not None


# Every check goes through an index: an address is looked up by `email_hash` (sha256 of the
# normalized address, stored as its 32 raw bytes), a domain by `domain`. A campaign checks its
# recipients in batches of at most `CHECK_BATCH` hashes per `IN` query, so ten million entries
# cost a few index probes per recipient and never a scan.
#
# Entry kinds (one row each, unique per key and list_id):
# - an address: `email` (normalized) and `email_hash`; `domain` is NULL;
# - a hash only (the address was erased, or the caller never had it): `email_hash` alone;
# - a whole domain: `domain` alone.
# An entry is active while `expires_at` is NULL or in the future. `scope` is `global` (list_id 0)
# or `list` (list_id names the list; such an entry blocks mail sent through that list only).

# Hashes per IN query: well under SQLite's and PostgreSQL's parameter limits.
CHECK_BATCH = 1000


def _active(now: datetime) -> ColumnElement[bool]:
    return or_(Suppression.expires_at.is_(None), Suppression.expires_at > now)


@dataclass(frozen=True)
class SuppressionHit:
    """Why an address must not be mailed: the entry that matched."""

    reason: str
    scope: str
    list_id: int
    kind: str  # "address" or "domain"
    source: str
    created_at: datetime

    def describe(self) -> str:
        """A short human sentence: "suppressed (hard_bounce, global)"."""
        where = "global" if self.scope == "global" else f"list {self.list_id}"
        by = "domain " if self.kind == "domain" else ""
        return f"{by}suppressed ({self.reason}, {where})"


@dataclass
class SuppressionStatus:
    """The active entries that concern one address: global (address or domain) and per list."""

    global_hit: SuppressionHit | None = None
    list_hits: dict[int, SuppressionHit] = field(default_factory=dict)

    def blocking(self, list_ids: Iterable[int] | None = None) -> SuppressionHit | None:
        """The entry that forbids mail through `list_ids` (any list entry when None): a global
        entry always does; list entries do when they cover every one of the lists."""
        if self.global_hit is not None:
            return self.global_hit
        if not self.list_hits:
            return None
        if list_ids is None:
            return next(iter(self.list_hits.values()))
        lists = list(list_ids)
        if lists and all(list_id in self.list_hits for list_id in lists):
            return self.list_hits[lists[0]]
        return None


# A batch's keys are looked up through statements compiled once (db.prepared.PreparedIn): an
# expanding IN would be compiled again for every batch size, which cost the sender more than
# the index probes themselves.
_LOOKUP_COLUMNS = (
    Suppression.email_hash,
    Suppression.domain,
    Suppression.reason,
    Suppression.scope,
    Suppression.list_id,
    Suppression.source,
    Suppression.created_at,
)
_ACTIVE_AT = or_(
    Suppression.expires_at.is_(None),
    Suppression.expires_at > bindparam("now", type_=Suppression.expires_at.type),
)
_BY_ADDRESS = PreparedIn(
    lambda keyed: select(*_LOOKUP_COLUMNS).where(keyed, _ACTIVE_AT), Suppression.email_hash
)
_BY_DOMAIN = PreparedIn(
    lambda keyed: select(*_LOOKUP_COLUMNS).where(
        keyed, _ACTIVE_AT, Suppression.email_hash.is_(None)
    ),
    Suppression.domain,
)


def check_batch_detail(
    session: Session, emails: Sequence[str], *, now: datetime | None = None
) -> dict[str, SuppressionStatus]:
    """For each suppressed address among `emails` (normalized), every active entry concerning it.

    Addresses are looked up by hash and by domain through indexes.
    """
    now = now or utcnow()
    by_digest: dict[bytes, list[str]] = {}
    by_domain: dict[str, list[str]] = {}
    for raw in emails:
        email = raw.strip().lower()
        by_digest.setdefault(sha256(email.encode("utf-8")).digest(), []).append(email)
        _, at, domain = email.rpartition("@")
        if at and domain:
            by_domain.setdefault(domain, []).append(email)
    found: dict[str, SuppressionStatus] = {}
    for kind, statement, owners in (
        ("address", _BY_ADDRESS, cast(dict[Any, list[str]], by_digest)),
        ("domain", _BY_DOMAIN, cast(dict[Any, list[str]], by_domain)),
    ):
        if not owners:
            continue
        for hashed, domain, reason, scope, list_id, source, created_at in statement.rows(
            session.connection(), list(owners), {"now": now}
        ):
            hit = SuppressionHit(reason, scope, list_id, kind, source, created_at)
            key = bytes.fromhex(hashed) if kind == "address" else domain
            for email in owners.get(key, ()):
                status = found.setdefault(email, SuppressionStatus())
                if scope == "global":
                    if status.global_hit is None or kind == "address":
                        status.global_hit = hit
                else:
                    status.list_hits.setdefault(list_id, hit)
    return found


def check_batch(
    session: Session,
    emails: Sequence[str],
    list_ids: Iterable[int] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, SuppressionHit]:
    """The suppressed addresses among `emails` (normalized address -> the entry that blocks it).

    Global entries always block; list entries block when they cover every list of `list_ids`
    (pass None to let any list entry block).
    """
    lists = None if list_ids is None else list(list_ids)
    hits: dict[str, SuppressionHit] = {}
    for email, status in check_batch_detail(session, emails, now=now).items():
        hit = status.blocking(lists)
        if hit is not None:
            hits[email] = hit
    return hits


def find(
    session: Session, email: str, list_ids: Iterable[int] | None = None
) -> SuppressionHit | None:
    """Why `email` is suppressed (None when it is not): one indexed lookup by hash and domain."""
    return check_batch(session, [email], list_ids).get(normalize_email(email))
