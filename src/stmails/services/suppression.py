"""The suppression list: addresses (by hash) and domains that must not be mailed.

Every send path checks its recipients just before SMTP: the campaign sender in batches
(`check_batch_detail()`), transactional mail and the relay per message (`check_batch()`,
`find()`). Each address is one probe of a unique index, whatever the list holds
(`benchmarks/suppression_lookup.py`). Entries are keyed by the sha256 of the
normalized address, so an entry still blocks after the address text was erased (`erase()`, used
by the bounce action `delete`). An entry is global or scoped to one list; it may expire.
The caller owns the transaction (these functions flush, never commit).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from stmails.db.engine import use_bulk_writes
from stmails.db.models import SUPPRESSION_REASONS, SUPPRESSION_SCOPES, Suppression
from stmails.db.prepared import PreparedIn
from stmails.db.types import email_domain, email_hash, normalize_email, utcnow
from stmails.db.upsert import insert_many_or_ignore, insert_or_ignore
from stmails.services.errors import InputError, InvalidInput
from stmails.verify.syntax import (
    COMMON_ADDRESS,
    MAX_ADDRESS_OCTETS,
    MAX_LOCAL_OCTETS,
    Policy,
    check_domain,
    check_syntax,
)

SuppressionReason = Literal[
    "hard_bounce", "soft_bounce", "complaint", "unsubscribe", "manual", "import"
]
SUPPRESSIONS = cast(Table, Suppression.__table__)
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


# --- Bulk and batch operations (the API, imports and campaign sending) ----------------------
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
#

# Hashes per IN query: well under SQLite's and PostgreSQL's parameter limits.
CHECK_BATCH = 1000
# Entries per PUT /api/suppressions request (SparkPost's bulk limit is of this order).
MAX_UPSERT = 10_000
_HASH = re.compile(r"^[0-9a-f]{64}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
_REASONS = frozenset(SUPPRESSION_REASONS)
_SCOPES = frozenset(SUPPRESSION_SCOPES)
_ONE_KEY = "give exactly one of recipient (email), email_hash or domain"


class SuppressionInputError(InputError):
    """An entry that cannot be stored; the message names the field and the problem."""


class SuppressionInput(NamedTuple):
    """One validated entry to upsert: exactly one of an address (`email` and its digest), a
    digest alone (`email_digest`), or a `domain` is the key.

    A named tuple rather than a frozen dataclass: a bulk request builds 10,000 of them, and a
    tuple is built in one C call. Its fields are the first columns of the bulk INSERT, in order.
    """

    email: str | None
    # The sha256 of the normalized address as 32 raw bytes (the stored form of email_hash).
    email_digest: bytes | None
    domain: str | None
    scope: str
    list_id: int
    reason: str
    source: str
    description: str
    expires_at: datetime | None


def _parse_time(value: Any, field_name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise SuppressionInputError(f"{field_name}: not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise SuppressionInputError(f"{field_name}: give a time zone (e.g. 2030-01-01T00:00:00Z)")
    return parsed


def _list_scope(raw: Mapping[str, Any]) -> tuple[str, int]:
    list_raw = raw.get("list_id")
    list_id = 0
    if list_raw not in (None, "", 0, "0"):
        try:
            list_id = int(str(list_raw))
        except (TypeError, ValueError) as exc:
            raise SuppressionInputError("list_id: expected a number") from exc
        if list_id <= 0:
            raise SuppressionInputError("list_id: expected a positive number")
    scope = str(raw.get("scope") or ("list" if list_id else "global")).lower()
    if scope not in _SCOPES:
        raise SuppressionInputError(f"scope: expected one of {', '.join(SUPPRESSION_SCOPES)}")
    if scope == "list" and not list_id:
        raise SuppressionInputError("scope list needs a list_id")
    return scope, 0 if scope == "global" else list_id


def _address_error(email: str) -> str | None:
    """Why `email` (normalized) is not an address by RFC 5321's grammar, or None.

    The permissive policy: a suppression list must take every address mail could be sent to.
    The common address is one regular-expression match and a cached verdict on its domain;
    only the others go through the full parser.
    """
    common = COMMON_ADDRESS.fullmatch(email) if len(email) <= MAX_ADDRESS_OCTETS else None
    if common is not None and len(common.group(1)) <= MAX_LOCAL_OCTETS:
        return check_domain(common.group(2)).rfc5321_error
    return check_syntax(email, Policy.RFC5321).error


def parse_entry(raw: Mapping[str, Any], *, default_reason: str = "manual") -> SuppressionInput:
    """One entry from the API or a CSV row; SuppressionInputError says what is wrong.

    The address is `recipient` (SparkPost's name) or `email`; `email_hash` alone, or `domain`
    alone, are the other kinds. `scope` defaults to `list` when `list_id` is given.
    """
    get = raw.get
    address = get("recipient") or get("email") or ""
    given_hash = get("email_hash") or get("hash") or ""
    domain = get("domain") or ""
    # The common entry, an address alone, skips the normalization of the other two keys.
    if given_hash or domain or not address:
        address = str(address).strip()
        given_hash = str(given_hash).strip().lower()
        domain = str(domain).strip().lower().rstrip(".")
    email: str | None = None
    digest: bytes | None = None
    dom: str | None = None
    if address and not given_hash and not domain:
        email = str(address).strip().lower()
        if not email:
            raise SuppressionInputError(_ONE_KEY)
        error = _address_error(email)
        if error is not None:
            raise SuppressionInputError(f"recipient: {error}: {email[:100]!r}")
        digest = sha256(email.encode("utf-8")).digest()
    elif bool(address) + bool(given_hash) + bool(domain) != 1:
        raise SuppressionInputError(_ONE_KEY)
    elif given_hash:
        if not _HASH.match(given_hash):
            raise SuppressionInputError("email_hash: expected 64 hex digits (sha256)")
        digest = bytes.fromhex(given_hash)
    else:
        dom = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
        if not _DOMAIN.match(dom):
            raise SuppressionInputError(f"domain: not a domain name: {domain[:100]!r}")
    if get("list_id") is None and get("scope") is None:
        scope, list_id = "global", 0
    else:
        scope, list_id = _list_scope(raw)
    reason = get("reason") or default_reason
    if reason not in _REASONS:
        reason = str(reason).lower()
        if reason not in _REASONS:
            raise SuppressionInputError(f"reason: expected one of {', '.join(SUPPRESSION_REASONS)}")
    return SuppressionInput(
        email,
        digest,
        dom,
        scope,
        list_id,
        reason,
        str(get("source") or "api")[:64],
        str(get("description") or "")[:2000],
        _parse_time(get("expires_at"), "expires_at"),
    )


def _insert(session: Session) -> Any:
    # The Core table, not the mapped class: bulk rows then skip the ORM's per-row bookkeeping.
    table = cast(Table, Suppression.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


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


def remove_matching(
    session: Session, target: str, *, scope: str = "", list_id: int | None = None
) -> int:
    """Deletes the entries for an address, a 64-hex hash or a domain; returns how many went.

    `scope`/`list_id` narrow the delete to one scope (all scopes by default). The caller commits.
    """
    value = target.strip().lower()
    if "@" in value:
        condition: ColumnElement[bool] = Suppression.email_hash == email_hash(value)
    elif _HASH.match(value):
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


def entry_to_dict(entry: Suppression) -> dict[str, Any]:
    """An entry in the API's shape (SparkPost's field names where they exist)."""
    kind = "domain" if entry.domain else ("address" if entry.email else "hash")
    return {
        "id": entry.id,
        "recipient": entry.email,
        "email_hash": entry.email_hash,
        "domain": entry.domain,
        "kind": kind,
        "scope": entry.scope,
        "list_id": entry.list_id or None,
        "reason": entry.reason,
        "source": entry.source,
        "description": entry.description,
        "created_at": entry.created_at.isoformat() if entry.created_at else None,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }
