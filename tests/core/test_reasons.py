"""The reason rules: text tables, status codes, precedence and the hard flag."""

from __future__ import annotations

import pytest

from stmails.core import REASONS, is_hard, match_reason
from stmails.core.reasons import HARD_REASONS, REASON_PHRASES, STATUS_REASONS


@pytest.mark.parametrize(
    ("text", "status", "replycode", "reason"),
    [
        ("550 5.1.1 <a@b.example>: User unknown", "5.1.1", "550", "userunknown"),
        ("552 5.2.2 Mailbox full", "5.2.2", "552", "mailboxfull"),
        ("550 5.1.1 mailbox is full", "5.1.1", "550", "mailboxfull"),
        ("", "5.1.6", "", "hasmoved"),
        ("", "5.1.2", "", "hostunknown"),
        ("Host or domain name not found", "4.4.4", "", "networkerror"),
        ("554 Message rejected as spam", "", "554", "spamdetected"),
        ("550 Relay access denied", "", "550", "norelaying"),
        ("blocked using zen.spamhaus.org", "5.7.1", "554", "blocked"),
        ("message size exceeds fixed maximum message size", "5.3.4", "552", "mesgtoobig"),
        ("Delivery time expired", "", "", "expired"),
        ("", "2.0.0", "250", "delivered"),
        ("something nobody has ever said", "", "", "undefined"),
        ("something nobody has ever said", "4.9.9", "", "onhold"),
    ],
)
def test_match_reason(text: str, status: str, replycode: str, reason: str) -> None:
    assert match_reason(text, status, replycode) == reason


def test_tables_name_only_known_reasons() -> None:
    assert {reason for reason, _ in REASON_PHRASES} <= REASONS
    assert set(STATUS_REASONS.values()) <= REASONS
    assert HARD_REASONS <= REASONS
    for _, phrases in REASON_PHRASES:
        assert all(phrase == phrase.lower() for phrase in phrases)


def test_hard_only_for_bad_addresses_and_not_when_temporary() -> None:
    assert is_hard("userunknown", "5.1.1")
    assert is_hard("notaccept", "5.1.10")
    assert not is_hard("notaccept", "4.1.10")
    assert not is_hard("spamdetected", "5.7.1")
    assert not is_hard("mailboxfull", "5.2.2")


def test_match_reason_is_bounded_on_huge_text() -> None:
    assert match_reason("x" * 5_000_000 + " user unknown") in REASONS
