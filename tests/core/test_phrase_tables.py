"""The reason tables as data: well formed, every phrase found by the indexed scan, and each
reporting MTA's own sentences read as their reason."""

from __future__ import annotations

import pytest

from stmails.core.reasons import (
    MTA_MESSAGES,
    REASONS,
    SMTP_ORDER,
    TABLES,
    TEXT_ORDER,
    scan,
    stated_by_mta,
)
from stmails.core.reasons.phrases import LOOSE_ORDER, normalize

ENTRIES = [
    (reason, kind, fragments)
    for reason, module in TABLES.items()
    for kind in ("PHRASES", "SEQUENCES", "EXCEPT", "LOOSE")
    for fragments in getattr(module, kind, ())
]


def test_every_table_is_a_known_reason_and_every_order_names_known_reasons() -> None:
    assert set(TABLES) <= REASONS
    assert {name for name, _ in SMTP_ORDER} <= REASONS
    assert set(TEXT_ORDER) <= REASONS
    assert set(LOOSE_ORDER) <= REASONS


@pytest.mark.parametrize(("reason", "kind", "fragments"), ENTRIES)
def test_fragments_are_in_the_form_texts_are_matched_in(
    reason: str, kind: str, fragments: str | tuple[str, ...]
) -> None:
    parts = (fragments,) if isinstance(fragments, str) else fragments
    if kind == "SEQUENCES":
        assert len(parts) >= 2
    for part in parts:
        # Lowercase, one space between words: the form normalize() gives a text.
        assert part == part.lower() and "  " not in part and "\n" not in part and part.strip()


@pytest.mark.parametrize(
    ("reason", "kind", "fragments"), [e for e in ENTRIES if e[1] in ("PHRASES", "SEQUENCES")]
)
def test_every_phrase_is_found_by_the_indexed_scan(
    reason: str, kind: str, fragments: str | tuple[str, ...]
) -> None:
    text = fragments if isinstance(fragments, str) else " and ".join(fragments)
    excepted = any(p in normalize(text) for p in getattr(TABLES[reason], "EXCEPT", ()))
    assert scan(f"550 {text} here").states(reason) is not excepted


@pytest.mark.parametrize(
    ("reason", "phrase"),
    [(r, p) for r, module in TABLES.items() for p in getattr(module, "LOOSE", ())],
)
def test_broad_words_suggest_but_do_not_state(reason: str, phrase: str) -> None:
    said = scan(f"550 {phrase} here")
    assert reason in said.loose


def test_loose_words_are_never_also_phrases_of_their_reason() -> None:
    for module in TABLES.values():
        assert not set(getattr(module, "LOOSE", ())) & set(getattr(module, "PHRASES", ()))


@pytest.mark.parametrize(
    ("mta", "diagnostic", "command", "status", "reason"),
    [
        ("exim", "all relevant MX records point to non-existent hosts", "", "", "hostunknown"),
        ("exim", "550 5.1.1 user unknown", "HELO", "5.1.1", "blocked"),
        ("exim", "550 anything at all", "MAIL", "", "onhold"),
        (
            "qmail",
            "Sorry, I couldn't find any host named nohost.example. (#5.1.2)",
            "",
            "",
            "hostunknown",
        ),
        ("qmail", "192.0.2.1 does not like recipient. Remote host said: 550 go away", "", "", ""),
        ("qmail", "192.0.2.1 does not like recipient.", "", "", "userunknown"),
        (
            "exchange2007",
            "554 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
            "",
            "",
            "hostunknown",
        ),
        (
            "office365",
            "550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large",
            "",
            "",
            "mesgtoobig",
        ),
        (
            "exchange2003",
            "MSEXCH:IMS:CORP:SITE:SERVER 0 (000C05A6) Unknown Recipient",
            "",
            "",
            "userunknown",
        ),
        ("domino", "User a (a@b.example) not listed in Domino Directory", "", "", "userunknown"),
        (
            "gmail",
            "The error that the other server returned was: 550 Rejected (state 14).",
            "",
            "",
            "userunknown",
        ),
        ("gmail", "returned was: 550 5.2.2 mailbox full (state 14).", "", "5.2.2", "mailboxfull"),
        ("opensmtpd", "Network error on destination MXs", "", "", "networkerror"),
        ("receivingses", "550 5.2.0 Message filtered", "", "5.2.0", "filtered"),
        ("postfix", "all relevant MX records point to non-existent hosts", "", "", ""),
    ],
)
def test_reporting_mta_own_words(
    mta: str, diagnostic: str, command: str, status: str, reason: str
) -> None:
    assert stated_by_mta(mta, diagnostic, command, status) == reason


def test_mta_tables_name_only_known_reasons() -> None:
    for table in MTA_MESSAGES.values():
        for reason, phrases in table:
            assert reason in REASONS
            assert all(phrase == phrase.lower() for phrase in phrases)
