"""Suppression entries: their vocabulary, and the parsing and validation of entries from callers.

`parse_entry()` turns one entry of the API, the admin pages or an import into a validated
`SuppressionInput` (or refuses it with `SuppressionInputError`), through one pydantic model
(`_Entry`) whose validators raise the errors the API answers with; `entry_to_dict()` gives a
stored entry in the API's shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from hashlib import sha256
from typing import Annotated, Any, Literal, NamedTuple, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
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


def _reason(reason: Any) -> str:
    """A reason of SUPPRESSION_REASONS, in any letter case."""
    if reason not in _REASONS:
        reason = str(reason).lower()
        if reason not in _REASONS:
            raise SuppressionInputError(f"reason: expected one of {', '.join(SUPPRESSION_REASONS)}")
    return str(reason)


class _Key(NamedTuple):
    """What an entry is about: exactly one of an address (with its digest), a digest, a domain."""

    email: str | None
    digest: bytes | None
    domain: str | None


def _list_id(value: Any) -> int:
    if value in (None, "", 0, "0"):
        return 0
    try:
        list_id = int(str(value))
    except (TypeError, ValueError) as exc:
        raise SuppressionInputError("list_id: expected a number") from exc
    if list_id <= 0:
        raise SuppressionInputError("list_id: expected a positive number")
    return list_id


class _Entry(BaseModel):
    """One entry as the API, the admin pages and imports give it (unknown keys ignored);
    `parse_entry` makes the SuppressionInput of it.

    Fields are validated in this order, and the first error is the one reported: the key
    (`recipient` or `email`, `email_hash` or `hash`, `domain`), then the list and scope, the
    reason, and the expiry. Errors are SuppressionInputErrors (their messages are the API's).
    """

    model_config = ConfigDict(extra="ignore")

    # Taken as given: an empty value (missing, null, "") is not given, the others are read as
    # text by the key's validator.
    recipient: Any = ""
    email: Any = ""
    email_hash: Any = ""
    hash: Any = ""
    # Resolved with the domain, the last of the keys.
    key: _Key = Field(default=None, validation_alias="domain", validate_default=True)
    list_id: Annotated[int, BeforeValidator(_list_id)] = 0
    # "" when not given: then the list's scope when there is a list_id, else global.
    scope: Annotated[str, BeforeValidator(lambda value: str(value or "").lower())] = ""
    # "" when not given: then the caller's default.
    reason: Annotated[str, BeforeValidator(lambda value: _reason(value) if value else "")] = ""
    source: Annotated[str, BeforeValidator(lambda value: str(value or "api")[:64])] = "api"
    description: Annotated[str, BeforeValidator(lambda value: str(value or "")[:2000])] = ""
    expires_at: Annotated[
        datetime | None, BeforeValidator(lambda value: _parse_time(value, "expires_at"))
    ] = None

    @field_validator("key", mode="plain")
    @classmethod
    def _one_key(cls, domain: Any, info: ValidationInfo) -> _Key:
        """Exactly one of an address, a digest or a domain, each valid."""
        data = info.data
        address = data.get("recipient") or data.get("email") or ""
        given_hash = data.get("email_hash") or data.get("hash") or ""
        domain = domain or ""
        # The common entry, an address alone, skips the normalization of the other two keys.
        if given_hash or domain or not address:
            address = str(address).strip()
            given_hash = str(given_hash).strip().lower()
            domain = str(domain).strip().lower().rstrip(".")
        if address and not given_hash and not domain:
            email = str(address).strip().lower()
            if not email:
                raise SuppressionInputError(_ONE_KEY)
            error = _address_error(email)
            if error is not None:
                raise SuppressionInputError(f"recipient: {error}: {email[:100]!r}")
            return _Key(email, sha256(email.encode("utf-8")).digest(), None)
        if bool(address) + bool(given_hash) + bool(domain) != 1:
            raise SuppressionInputError(_ONE_KEY)
        if given_hash:
            if not HEX_HASH.match(given_hash):
                raise SuppressionInputError("email_hash: expected 64 hex digits (sha256)")
            return _Key(None, bytes.fromhex(given_hash), None)
        dom = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
        if not _DOMAIN.match(dom):
            raise SuppressionInputError(f"domain: not a domain name: {domain[:100]!r}")
        return _Key(None, None, dom)

    @field_validator("scope", mode="after")
    @classmethod
    def _scope(cls, scope: str, info: ValidationInfo) -> str:
        if scope and scope not in _SCOPES:
            raise SuppressionInputError(f"scope: expected one of {', '.join(SUPPRESSION_SCOPES)}")
        if scope == "list" and not info.data.get("list_id"):
            raise SuppressionInputError("scope list needs a list_id")
        return scope


# Built once: a bulk request parses 10,000 entries (model_validate adds a call per entry).
_VALIDATE = _Entry.__pydantic_validator__.validate_python


def _refusal(exc: ValidationError) -> SuppressionInputError:
    """The first error of a refused entry, as its validator raised it."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SuppressionInputError):
        return cause
    where = ".".join(str(part) for part in error["loc"])
    return SuppressionInputError(f"{where}: {error['msg']}" if where else str(error["msg"]))


def parse_entry(raw: Mapping[str, Any], *, default_reason: str = "manual") -> SuppressionInput:
    """One entry from the API or a CSV row; SuppressionInputError says what is wrong.

    The address is `recipient` (SparkPost's name) or `email`; `email_hash` alone, or `domain`
    alone, are the other kinds. `scope` defaults to `list` when `list_id` is given.
    """
    try:
        valid: _Entry = _VALIDATE(raw)
    except ValidationError as exc:
        raise _refusal(exc) from None
    key = valid.key
    # The caller's default is checked only when the entry has no reason.
    reason = valid.reason or _reason(default_reason)
    scope = valid.scope or ("list" if valid.list_id else "global")
    return SuppressionInput(
        key.email,
        key.digest,
        key.domain,
        scope,
        0 if scope == "global" else valid.list_id,
        reason,
        valid.source,
        valid.description,
        valid.expires_at,
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
