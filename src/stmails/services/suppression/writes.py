"""Writing the suppression list: add, upsert, erase and remove entries.

Entries are keyed by the sha256 of the normalized address, so an entry still blocks after the
address text was erased (`erase()`, used by the bounce action `delete`). The caller owns the
transaction (these functions flush, never commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from stmails.db.engine import use_bulk_writes
from stmails.db.models import SUPPRESSION_REASONS, Suppression
from stmails.db.types import email_hash, normalize_email, utcnow
from stmails.db.upsert import dialect_insert, insert_many_or_ignore, insert_or_ignore
from stmails.services.errors import InvalidInput
from stmails.services.suppression.entries import (
    GLOBAL,
    HEX_HASH,
    SUPPRESSIONS,
    SuppressionInput,
    SuppressionReason,
)


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
    concurrent calls for the same address (a unique constraint and ON CONFLICT DO NOTHING).
    """
    if reason not in SUPPRESSION_REASONS:
        raise InvalidInput("reason", f"unknown suppression reason {reason!r}")
    if sum(x is not None for x in (email, hashed, domain)) != 1:
        raise InvalidInput("email", "give exactly one of email, hashed or domain")
    now = now or utcnow()
    scope, scope_list = _scope(list_id)
    key_hash = email_hash(email) if email is not None else hashed
    norm_domain = domain.strip().lower().lstrip("@") if domain is not None else None
    created = insert_or_ignore(
        session,
        SUPPRESSIONS,
        {
            "email": normalize_email(email) if email is not None and keep_address else None,
            "email_hash": key_hash,
            "domain": norm_domain,
            "scope": scope,
            "list_id": scope_list,
            "reason": reason,
            "source": source[:64],
            "description": description,
            "created_at": now,
            "expires_at": expires_at,
        },
        SUPPRESSIONS.c.id,
    )
    if created is not None:
        return _get(session, int(created)), True
    existing = _find(session, key_hash, norm_domain, scope, scope_list)
    if existing is None:
        raise RuntimeError("suppression insert was ignored but no entry exists")
    if existing.expires_at is not None and existing.expires_at <= now:
        existing.reason, existing.source, existing.description = reason, source[:64], description
        existing.created_at, existing.expires_at = now, expires_at
    elif existing.expires_at is not None and expires_at is None:
        existing.expires_at = None
    if not keep_address:
        existing.email = None
    session.flush()
    return existing, False


@dataclass(frozen=True, slots=True)
class NewSuppression:
    """One address to suppress globally and for good: by hash, with its text unless erased."""

    hashed: str
    reason: SuppressionReason
    # The normalized address to keep beside the hash; None keeps only the hash.
    email: str | None = None
    source: str = ""
    description: str = ""


def add_many(
    session: Session, entries: Sequence[NewSuppression], *, now: datetime | None = None
) -> int:
    """Suppress many addresses globally and permanently, in a few statements (bounce recording).

    The first entry for a hash wins within the call; an address already suppressed keeps its
    reason and source, but a temporary entry becomes permanent, and an entry asked for by hash
    only loses its address text. Returns how many entries are new.
    """
    now = now or utcnow()
    by_hash: dict[str, NewSuppression] = {}
    for entry in entries:
        by_hash.setdefault(entry.hashed, entry)
    if not by_hash:
        return 0
    rows = [
        {
            "email": e.email,
            "email_hash": e.hashed,
            "domain": None,
            "scope": "global",
            "list_id": GLOBAL,
            "reason": e.reason,
            "source": e.source[:64],
            "description": e.description,
            "created_at": now,
            "expires_at": None,
        }
        # In hash order, so that concurrent transactions cannot deadlock on these rows.
        for e in sorted(by_hash.values(), key=lambda e: e.hashed)
    ]
    inserted = {
        row[0]
        for row in insert_many_or_ignore(session, SUPPRESSIONS, rows, [SUPPRESSIONS.c.email_hash])
    }
    existing = [h for h in by_hash if h not in inserted]
    if not existing:
        return len(inserted)
    in_global = (Suppression.scope == "global") & (Suppression.list_id == GLOBAL)
    session.execute(
        update(Suppression)
        .where(in_global, Suppression.email_hash.in_(existing), Suppression.expires_at.is_not(None))
        .values(expires_at=None)
        .execution_options(synchronize_session="fetch")
    )
    erased = [h for h in existing if by_hash[h].email is None]
    if erased:
        session.execute(
            update(Suppression)
            .where(Suppression.email_hash.in_(erased))
            .values(email=None)
            .execution_options(synchronize_session="fetch")
        )
    return len(inserted)


def _get(session: Session, entry_id: int) -> Suppression:
    entry = session.get(Suppression, entry_id)
    assert entry is not None
    return entry


def _find(
    session: Session, key_hash: str | None, domain: str | None, scope: str, list_id: int
) -> Suppression | None:
    query = select(Suppression).where(Suppression.scope == scope, Suppression.list_id == list_id)
    if key_hash is not None:
        query = query.where(Suppression.email_hash == key_hash)
    else:
        query = query.where(Suppression.domain == domain)
    return session.scalars(query).first()


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


def _insert(session: Session) -> Any:
    # The Core table, not the mapped class: bulk rows then skip the ORM's per-row bookkeeping.
    table = cast(Table, Suppression.__table__)
    return dialect_insert(session, table)


# The bulk INSERT's columns in the table's order: a SuppressionInput's fields (email_digest is
# bound to email_hash), then created_at.
_COLUMNS = (
    "email",
    "email_hash",
    "domain",
    "scope",
    "list_id",
    "reason",
    "source",
    "description",
    "expires_at",
    "created_at",
)
# Rows per executemany call: bounds the driver's parameter buffers.
_UPSERT_CHUNK = 5000


def upsert_many(session: Session, entries: Iterable[SuppressionInput]) -> int:
    """Inserts or updates the entries (the last one wins for a repeated key); returns how many
    distinct entries were written. The caller commits."""
    by_digest: dict[tuple[Any, int], SuppressionInput] = {}
    by_domain: dict[tuple[Any, int], SuppressionInput] = {}
    for entry in entries:
        if entry.domain is None:
            by_digest[entry.email_digest, entry.list_id] = entry
        else:
            by_domain[entry.domain, entry.list_id] = entry
    for key, unique in (("email_hash", by_digest), ("domain", by_domain)):
        if unique:
            # In key order: each index page is then visited once, in one sweep, instead of at
            # random (and concurrent upserts lock rows in the same order on PostgreSQL).
            _execute_upsert(session, key, [unique[k] for k in sorted(unique)])
    return len(by_digest) + len(by_domain)


def _execute_upsert(session: Session, key: str, entries: list[SuppressionInput]) -> None:
    """One INSERT ... ON CONFLICT DO UPDATE run over `entries` with the driver's executemany.

    The statement is compiled once and the parameters handed to the driver as they are: the
    digest is already bytes, and only the timestamps need the column type's conversion (once
    for created_at, once per entry that expires). A 10,000-entry request then costs the
    driver's loop, not SQLAlchemy's per-row parameter handling.
    """
    table = SUPPRESSIONS
    stmt = _insert(session).values({name: bindparam(name) for name in _COLUMNS})
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[key, "list_id"],
        index_where=table.c[key].is_not(None),
        set_={
            # An erased address stays erased: a hash-only upsert does not bring text back,
            # and a later upsert with the address fills it in.
            "email": func.coalesce(excluded.email, table.c.email),
            "reason": excluded.reason,
            "source": excluded.source,
            "description": excluded.description,
            "expires_at": excluded.expires_at,
        },
    )
    connection = session.connection()
    dialect = connection.dialect
    use_bulk_writes(connection)
    compiled = stmt.compile(dialect=dialect)
    # The dialect's own conversion (on SQLite the stored text, the same as every other write
    # makes), so that the driver gets values it needs no adapter for.
    processor = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    to_db: Callable[[Any], Any] = processor if processor is not None else (lambda value: value)
    created_at = to_db(utcnow())
    expiring = SuppressionInput._fields.index("expires_at")
    rows: list[tuple[Any, ...]] = [
        (*entry[:expiring], to_db(entry.expires_at), created_at)
        if entry.expires_at is not None
        else (*entry, created_at)
        for entry in entries
    ]
    params: list[Any] = rows
    if not compiled.positional:
        params = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
    elif compiled.positiontup != list(_COLUMNS):
        indexes = [_COLUMNS.index(name) for name in compiled.positiontup or ()]
        params = [tuple([row[i] for i in indexes]) for row in rows]
    for start in range(0, len(params), _UPSERT_CHUNK):
        connection.exec_driver_sql(compiled.string, params[start : start + _UPSERT_CHUNK])


def remove_matching(
    session: Session, target: str, *, scope: str = "", list_id: int | None = None
) -> int:
    """Deletes the entries for an address, a 64-hex hash or a domain; returns how many went.

    `scope`/`list_id` narrow the delete to one scope (all scopes by default). The caller commits.
    """
    value = target.strip().lower()
    if "@" in value:
        condition: ColumnElement[bool] = Suppression.email_hash == email_hash(value)
    elif HEX_HASH.match(value):
        condition = Suppression.email_hash == value
    else:
        condition = and_(Suppression.domain == value, Suppression.email_hash.is_(None))
    conditions = [condition]
    if scope:
        conditions.append(Suppression.scope == scope)
    if list_id is not None:
        conditions.append(Suppression.list_id == list_id)
    result = session.execute(delete(Suppression).where(*conditions))
    return int(getattr(result, "rowcount", 0) or 0)
