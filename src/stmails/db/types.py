"""Column types that behave the same on SQLite and PostgreSQL, and the helpers they need."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# A JSON document: JSONB on PostgreSQL (indexable, `->>` works), JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    """The form an address is compared and hashed in: surrounding space removed, lowercased."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """sha256 (hex) of the normalized address: what suppressions keep when the address is erased."""
    return hashlib.sha256(normalize_email(email).encode("utf-8")).hexdigest()


def email_digest(email: str) -> bytes:
    """sha256 (32 raw bytes) of the normalized address: the stored form of `email_hash`."""
    return hashlib.sha256(normalize_email(email).encode("utf-8")).digest()


def email_domain(email: str) -> str:
    """The normalized domain part of an address ('' when there is none)."""
    _, at, domain = normalize_email(email).rpartition("@")
    return domain if at else ""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores `timestamptz`. SQLite has no time zones, so the value is stored as naive
    UTC text in one fixed format: string comparison then equals time comparison. Naive datetimes
    are refused on the way in, because their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Sha256Digest(TypeDecorator[str]):
    """A sha256 digest: 64 lower-case hex digits in Python, its 32 raw bytes in the database.

    Half the width of the hex text, which halves the size of an index keyed by it (BLOB on
    SQLite, bytea on PostgreSQL). Bulk writers may bind the raw bytes (`email_digest()`)
    themselves; everything else compares and reads hex strings as before.
    """

    impl = LargeBinary(32)
    cache_ok = True

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        try:
            digest = bytes.fromhex(value)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ValueError(f"not a sha256 hex digest: {value[:80]!r}")
        return digest

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> str | None:
        return None if value is None else bytes(value).hex()
