"""Suppression entries: their vocabulary, and the parsing and validation of entries from callers.

`parse_entry()` turns one entry of the API, the admin pages or an import into a validated
`SuppressionInput` (or refuses it with `SuppressionInputError`); `entry_to_dict()` gives a
stored entry in the API's shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from hashlib import sha256
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import Table

from stmails.db.models import SUPPRESSION_REASONS, SUPPRESSION_SCOPES, Suppression
from stmails.services.errors import InputError
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


# Entries per PUT /api/suppressions request (SparkPost's bulk limit is of this order).
MAX_UPSERT = 10_000
HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
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
        if not HEX_HASH.match(given_hash):
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
