"""The suppression list: addresses (by hash) and domains that must not be mailed.

Every send path asks `is_suppressed()` just before SMTP. Entries are keyed by the sha256 of the
normalized address, so an entry still blocks after the address text was erased (`erase()`, used
by the bounce action `delete`). An entry is global or scoped to one list; it may expire.
The caller owns the transaction (these functions flush, never commit).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import SUPPRESSION_REASONS, Suppression
from stmails.db.types import email_domain, email_hash, normalize_email, utcnow

SuppressionReason = Literal[
    "hard_bounce", "soft_bounce", "complaint", "unsubscribe", "manual", "import"
]
# Global entries have list_id 0 (see the model: NULLs would defeat the unique constraints).
GLOBAL = 0


def _scope(list_id: int | None) -> tuple[str, int]:
    return ("global", GLOBAL) if list_id is None else ("list", list_id)


def add(
    session: Session,
    *,
    reason: SuppressionReason,
    email: str | None = None,
    hashed: str | None = None,
    domain: str | None = None,
    list_id: int | None = None,
    source: str = "",
    description: str = "",
    expires_at: datetime | None = None,
    keep_address: bool = True,
    now: datetime | None = None,
) -> tuple[Suppression, bool]:
    """Suppress an address (`email`, or only its `hashed` form) or a whole `domain`.

    `list_id` None means every list. `keep_address=False` stores only the hash. Returns the
    entry and whether it was created. An existing entry is kept (first reason and source win);
    only an expired one is renewed, and an expiring one becomes permanent when asked. Safe under
    concurrent calls for the same address (a unique constraint and a savepoint).
    """
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    if sum(x is not None for x in (email, hashed, domain)) != 1:
        raise ValueError("give exactly one of email, hashed or domain")
    now = now or utcnow()
    scope, scope_list = _scope(list_id)
    key_hash = email_hash(email) if email is not None else hashed
    norm_domain = domain.strip().lower().lstrip("@") if domain is not None else None
    existing = _find(session, key_hash, norm_domain, scope, scope_list)
    if existing is None:
        entry = Suppression(
            email=normalize_email(email) if email is not None and keep_address else None,
            email_hash=key_hash,
            domain=norm_domain,
            scope=scope,
            list_id=scope_list,
            reason=reason,
            source=source[:64],
            description=description,
            created_at=now,
            expires_at=expires_at,
        )
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError:
            # Another transaction suppressed the same address first: use its entry.
            existing = _find(session, key_hash, norm_domain, scope, scope_list)
            if existing is None:
                raise
        else:
            return entry, True
    if existing.expires_at is not None and existing.expires_at <= now:
        existing.reason, existing.source, existing.description = reason, source[:64], description
        existing.created_at, existing.expires_at = now, expires_at
    elif existing.expires_at is not None and expires_at is None:
        existing.expires_at = None
    if not keep_address:
        existing.email = None
    session.flush()
    return existing, False


def _find(
    session: Session, key_hash: str | None, domain: str | None, scope: str, list_id: int
) -> Suppression | None:
    query = select(Suppression).where(Suppression.scope == scope, Suppression.list_id == list_id)
    if key_hash is not None:
        query = query.where(Suppression.email_hash == key_hash)
    else:
        query = query.where(Suppression.domain == domain)
    return session.scalars(query).first()


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


def erase(session: Session, email: str) -> int:
    """Forget the text of `email` in every entry, keeping its hash (they go on blocking)."""
    result = session.execute(
        update(Suppression)
        .where(Suppression.email_hash == email_hash(email))
        .values(email=None)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def is_erased(session: Session, hashed: str) -> bool:
    """True when an entry holds `hashed` without its address (the address was deleted)."""
    query = select(Suppression.id).where(
        Suppression.email_hash == hashed, Suppression.email.is_(None)
    )
    return session.scalars(query.limit(1)).first() is not None


def remove(session: Session, entry_id: int) -> bool:
    """Delete one entry by id; True when it existed."""
    entry = session.get(Suppression, entry_id)
    if entry is None:
        return False
    session.delete(entry)
    session.flush()
    return True
