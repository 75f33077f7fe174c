"""Suppression entries without a database: `parse_entry()` accepts and refuses, table by table."""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import pytest

from stmails.services.suppression.entries import (
    GLOBAL,
    SuppressionInput,
    SuppressionInputError,
    parse_entry,
)

DIGEST = sha256(b"ana@example.org").digest()


def entry(
    *,
    email: str | None = None,
    digest: bytes | None = None,
    domain: str | None = None,
    scope: str = "global",
    list_id: int = GLOBAL,
    reason: str = "manual",
    source: str = "api",
    description: str = "",
    expires_at: datetime | None = None,
) -> SuppressionInput:
    return SuppressionInput(
        email, digest, domain, scope, list_id, reason, source, description, expires_at
    )


ACCEPTED: list[tuple[str, dict[str, Any], SuppressionInput]] = [
    (
        "recipient-normalized",
        {"recipient": "  Ana@Example.ORG "},
        entry(email="ana@example.org", digest=DIGEST),
    ),
    ("email-alias", {"email": "ana@example.org"}, entry(email="ana@example.org", digest=DIGEST)),
    ("hash-alone", {"email_hash": DIGEST.hex().upper()}, entry(digest=DIGEST)),
    ("hash-alias", {"hash": DIGEST.hex()}, entry(digest=DIGEST)),
    ("domain", {"domain": "Example.ORG."}, entry(domain="example.org")),
    ("idn-domain", {"domain": "bücher.example"}, entry(domain="xn--bcher-kva.example")),
    (
        "list-scope-from-list-id",
        {"recipient": "ana@example.org", "list_id": "7"},
        entry(email="ana@example.org", digest=DIGEST, scope="list", list_id=7),
    ),
    (
        "global-scope-drops-the-list",
        {"recipient": "ana@example.org", "list_id": 7, "scope": "GLOBAL"},
        entry(email="ana@example.org", digest=DIGEST),
    ),
    (
        "reason-any-case-source-description",
        {
            "recipient": "ana@example.org",
            "reason": "Hard_Bounce",
            "source": "s" * 100,
            "description": "why",
        },
        entry(
            email="ana@example.org",
            digest=DIGEST,
            reason="hard_bounce",
            source="s" * 64,
            description="why",
        ),
    ),
    (
        "expiry-with-zone",
        {"recipient": "ana@example.org", "expires_at": "2030-01-01T00:00:00Z"},
        entry(
            email="ana@example.org",
            digest=DIGEST,
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        ),
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [(raw, out) for _, raw, out in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepted(raw: dict[str, Any], expected: SuppressionInput) -> None:
    assert parse_entry(raw) == expected


def test_the_callers_default_reason_applies_when_none_is_given() -> None:
    assert parse_entry({"recipient": "ana@example.org"}, default_reason="import").reason == "import"
    for empty in ("", None):
        given = {"recipient": "ana@example.org", "reason": empty}
        assert parse_entry(given, default_reason="Import").reason == "import"
    with pytest.raises(SuppressionInputError, match="reason: expected"):
        parse_entry({"recipient": "ana@example.org"}, default_reason="spite")


def test_empty_values_are_not_given() -> None:
    # An empty key falls back to the next one, an empty scope to the list's or global.
    got = parse_entry({"recipient": "", "email": "ana@example.org", "scope": "", "list_id": 5})
    assert (got.email, got.scope, got.list_id) == ("ana@example.org", "list", 5)
    got = parse_entry({"email_hash": None, "hash": DIGEST.hex(), "list_id": "0", "source": ""})
    assert (got.email_digest, got.scope, got.list_id, got.source) == (DIGEST, "global", 0, "api")
    # The key is checked first: its error is the one reported.
    with pytest.raises(SuppressionInputError, match=r"^recipient: "):
        parse_entry({"recipient": "ana", "list_id": "x", "reason": "spite"})
    with pytest.raises(SuppressionInputError, match=r"^list_id: "):
        parse_entry({"recipient": "ana@example.org", "list_id": "x", "reason": "spite"})


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("nothing", {}, "exactly one of"),
    ("two-keys", {"recipient": "ana@example.org", "domain": "example.org"}, "exactly one of"),
    ("hash-and-domain", {"email_hash": DIGEST.hex(), "domain": "example.org"}, "exactly one of"),
    ("blank-recipient", {"recipient": "   "}, "exactly one of"),
    ("not-an-address", {"recipient": "ana"}, "recipient: "),
    ("short-hash", {"email_hash": "abc123"}, "64 hex digits"),
    ("not-a-domain", {"domain": "exa mple.org"}, "not a domain name"),
    ("unknown-reason", {"recipient": "ana@example.org", "reason": "spite"}, "reason: expected"),
    ("unknown-scope", {"recipient": "ana@example.org", "scope": "planet"}, "scope: expected"),
    ("list-scope-without-list", {"recipient": "ana@example.org", "scope": "list"}, "needs a"),
    ("list-id-not-a-number", {"recipient": "ana@example.org", "list_id": "x"}, "a number"),
    ("list-id-negative", {"recipient": "ana@example.org", "list_id": -3}, "a positive number"),
    (
        "expiry-not-iso",
        {"recipient": "ana@example.org", "expires_at": "next week"},
        "not an ISO 8601 time",
    ),
    (
        "expiry-without-zone",
        {"recipient": "ana@example.org", "expires_at": "2030-01-01T00:00:00"},
        "give a time zone",
    ),
]


@pytest.mark.parametrize(
    ("raw", "problem"), [(raw, why) for _, raw, why in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(SuppressionInputError, match=problem):
        parse_entry(raw)
