"""services.suppression: addresses by hash, domains, list scope, expiry, erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import Suppression
from stmails.db.types import email_hash
from stmails.services import suppression

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_an_address_is_suppressed_whatever_its_case(session: Session) -> None:
    entry, created = suppression.add(
        session, email="Ana@Example.org", reason="manual", source="admin", now=NOW
    )
    assert created and entry.email == "ana@example.org"
    assert suppression.is_suppressed(session, " ANA@example.ORG ", now=NOW)
    assert not suppression.is_suppressed(session, "bob@example.org", now=NOW)


def test_adding_twice_keeps_one_entry_and_the_first_reason(session: Session) -> None:
    suppression.add(session, email="a@example.org", reason="hard_bounce", source="ses", now=NOW)
    entry, created = suppression.add(session, email="a@example.org", reason="complaint", now=NOW)
    assert not created and entry.reason == "hard_bounce"
    assert session.scalar(select(func.count()).select_from(Suppression)) == 1


def test_domain_entries_block_every_address_of_the_domain(session: Session) -> None:
    suppression.add(session, domain="@Spam.example", reason="manual", now=NOW)
    hit = suppression.lookup(session, "anyone@spam.example", now=NOW)
    assert hit is not None and hit.domain == "spam.example"
    assert not suppression.is_suppressed(session, "anyone@ham.example", now=NOW)


def test_list_scoped_entries_block_only_that_list(session: Session) -> None:
    suppression.add(session, email="a@example.org", reason="unsubscribe", list_id=7, now=NOW)
    assert suppression.is_suppressed(session, "a@example.org", list_id=7, now=NOW)
    assert not suppression.is_suppressed(session, "a@example.org", list_id=8, now=NOW)
    assert not suppression.is_suppressed(session, "a@example.org", now=NOW)


def test_expired_entries_stop_blocking_and_can_be_renewed(session: Session) -> None:
    suppression.add(
        session,
        email="a@example.org",
        reason="soft_bounce",
        expires_at=NOW + timedelta(days=1),
        now=NOW,
    )
    assert suppression.is_suppressed(session, "a@example.org", now=NOW)
    later = NOW + timedelta(days=2)
    assert not suppression.is_suppressed(session, "a@example.org", now=later)
    entry, created = suppression.add(
        session, email="a@example.org", reason="hard_bounce", now=later
    )
    assert not created and (entry.reason, entry.expires_at) == ("hard_bounce", None)
    assert suppression.is_suppressed(session, "a@example.org", now=later + timedelta(days=400))


def test_erased_addresses_keep_blocking_by_hash(session: Session) -> None:
    suppression.add(session, email="gone@example.org", reason="complaint", now=NOW)
    assert suppression.erase(session, "GONE@example.org") == 1
    session.expire_all()
    entry = session.scalars(select(Suppression)).one()
    assert (entry.email, entry.email_hash) == (None, email_hash("gone@example.org"))
    assert suppression.is_erased(session, email_hash("gone@example.org"))
    assert suppression.is_suppressed(session, "gone@example.org", now=NOW)


def test_remove_deletes_an_entry(session: Session) -> None:
    entry, _ = suppression.add(session, email="a@example.org", reason="manual", now=NOW)
    assert suppression.remove(session, entry.id)
    assert not suppression.remove(session, entry.id)
    assert not suppression.is_suppressed(session, "a@example.org", now=NOW)


def test_bulk_and_single_writes_share_one_key_per_address_and_list(session: Session) -> None:
    hashed = email_hash("shared@example.org")
    bulk = [suppression.parse_entry({"recipient": " Shared@Example.org ", "reason": "import"})]
    assert suppression.upsert_many(session, bulk) == 1
    entry, created = suppression.add(session, hashed=hashed, reason="complaint", now=NOW)
    assert not created and (entry.email, entry.reason) == ("shared@example.org", "import")
    assert suppression.add_many(session, [suppression.NewSuppression(hashed, "hard_bounce")]) == 0
    scoped = suppression.parse_entry({"email_hash": hashed.upper(), "list_id": "4"})
    assert suppression.upsert_many(session, [scoped]) == 1
    stored = suppression.entries_for(session, "shared@example.org")
    assert [(e.email_hash, e.scope, e.list_id, e.email) for e in stored] == [
        (hashed, "global", 0, None),
        (hashed, "list", 4, None),
    ]


def test_bulk_upsert_updates_in_place_and_keeps_times_comparable(session: Session) -> None:
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    first = {
        "recipient": "a@example.org",
        "reason": "soft_bounce",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    suppression.upsert_many(session, [suppression.parse_entry(first)])
    again = {"recipient": "a@example.org", "reason": "manual", "description": "by hand"}
    domain = {"domain": "Example.NET.", "scope": "list", "list_id": 2}
    assert suppression.upsert_many(session, [suppression.parse_entry(e) for e in (again, domain)])
    session.expire_all()
    entries = session.scalars(select(Suppression).order_by(Suppression.id)).all()
    assert [(e.reason, e.description, e.expires_at, e.domain) for e in entries] == [
        ("manual", "by hand", None, None),
        ("manual", "", None, "example.net"),
    ]
    suppression.upsert_many(session, [suppression.parse_entry(first)])
    session.expire_all()
    assert (
        session.scalars(select(Suppression.expires_at).order_by(Suppression.id).limit(1)).one()
        == expiry
    )
    assert suppression.is_suppressed(session, "a@example.org", now=expiry - timedelta(seconds=1))
    assert not suppression.is_suppressed(session, "a@example.org", now=expiry)


def test_entries_take_any_rfc5321_address_and_name_what_is_wrong() -> None:
    for address in ('"Ana Maria"@example.org', "ana@[192.0.2.1]", "ünï@bücher.example", "a@host"):
        parsed = suppression.parse_entry({"recipient": address})
        assert parsed.email == address.lower() and parsed.email_digest is not None
    for address, problem in (
        ("a@b@example.org", "dot-atom"),
        ("ana maria@example.org", r"U\+0020"),
        ("ana@-example.org", "label"),
        ("a" * 65 + "@example.org", "64 octets"),
    ):
        with pytest.raises(suppression.SuppressionInputError, match=problem):
            suppression.parse_entry({"recipient": address})


def test_a_batch_check_finds_every_kind_of_entry_across_lookup_slices(session: Session) -> None:
    emails = [f"user{n}@host{n % 40}.example" for n in range(150)]
    suppression.add(session, email=emails[100].upper(), reason="hard_bounce", now=NOW)
    suppression.add(session, domain="host5.example", reason="manual", now=NOW)
    suppression.add(session, email=emails[70], reason="unsubscribe", list_id=7, now=NOW)
    suppression.add(
        session,
        email=emails[130],
        reason="soft_bounce",
        expires_at=NOW - timedelta(days=1),
        now=NOW,
    )
    suppression.add(session, email=emails[149], reason="complaint", now=NOW)
    suppression.erase(session, emails[149])
    found = suppression.check_batch_detail(session, emails, now=NOW)
    # host5.example: addresses 5, 45, 85 and 125 (beyond the first slice of LOOKUP_WIDTH).
    by_domain = {emails[n] for n in (5, 45, 85, 125)}
    assert set(found) == {emails[100], emails[70], emails[149]} | by_domain
    assert found[emails[100]].global_hit is not None
    assert found[emails[100]].global_hit.reason == "hard_bounce"
    assert found[emails[149]].global_hit is not None
    assert found[emails[149]].global_hit.kind == "address"
    assert found[emails[70]].global_hit is None and set(found[emails[70]].list_hits) == {7}
    for email in by_domain:
        hit = found[email].global_hit
        assert hit is not None and (hit.kind, hit.reason) == ("domain", "manual")
