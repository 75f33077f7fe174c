"""The order in which the rules weigh the evidence, one row per rule."""

from __future__ import annotations

import pytest

from stmails.core.reasons import Evidence, decide

E = Evidence
ROWS: list[tuple[str, Evidence, str]] = [
    # A reason the format states stands, unless it is one MTAs say when they know little.
    ("stated", E(text="550 mailbox full", status="5.2.2", stated="feedback"), "feedback"),
    ("revisable", E(text="552 mailbox full", status="5.2.2", stated="userunknown"), "mailboxfull"),
    ("revisable kept", E(text="whatever", stated="systemerror"), "systemerror"),
    ("delivered", E(text="250 ok", status="2.1.5"), "delivered"),
    # The SMTP checks, in order.
    ("full whatever the code", E(text="550 5.1.1 mailbox full", status="5.1.1"), "mailboxfull"),
    ("size", E(text="552 message size exceeds fixed limit", status="5.3.4"), "mesgtoobig"),
    (
        "per-recipient size",
        E(text="550 5.2.3 message too large for this recipient", status="5.2.3"),
        "exceedlimit",
    ),
    ("suspend needs a code", E(text="550 mailbox disabled", status="5.0.0"), "suspend"),
    ("suspend by 525", E(text="525 whatever", status="5.7.13", replycode="525"), "suspend"),
    ("moved", E(text="550 user has been replaced by a@b.example", status="5.1.6"), "hasmoved"),
    ("relay", E(text="554 5.7.1 Relay access denied", status="5.7.1"), "norelaying"),
    # At the greeting the relay check is skipped; the text order still reads the words.
    ("relay at greeting", E(text="554 relay access denied", command="HELO"), "norelaying"),
    ("greeting, no words known", E(text="554 go away now", command="HELO"), "blocked"),
    ("auth", E(text="550 5.7.1 SPF check failed", status="5.7.1"), "authfailure"),
    ("unknown by code", E(text="550 5.1.1 no such user", status="5.1.1"), "userunknown"),
    (
        "code but the words are a relay refusal",
        E(text="550 5.1.1 relaying denied", status="5.1.1"),
        "norelaying",
    ),
    ("unknown at RCPT", E(text="550 no such user", command="RCPT"), "userunknown"),
    ("unknown after DATA", E(text="550 no such user", command="DATA"), "filtered"),
    ("unknown, phase unsaid", E(text="550 no such user"), "filtered"),
    ("filter code", E(text="550 5.2.0 user unknown", status="5.2.0"), "filtered"),
    ("ptr", E(text="550 reverse dns required", status="5.7.1"), "requireptr"),
    (
        "rfc",
        E(text="550 5.7.1 this message is not rfc 5322 compliant", status="5.7.1"),
        "notcompliantrfc",
    ),
    (
        "reputation",
        E(text="421 4.7.0 a poor email reputation score", status="4.7.0"),
        "badreputation",
    ),
    ("sender at MAIL", E(text="553 sender rejected", command="MAIL"), "rejected"),
    ("sender code", E(text="553 whatever", status="5.1.8"), "rejected"),
    ("domain", E(text="550 host unknown", status="5.4.4"), "hostunknown"),
    ("domain for now", E(text="450 host or domain name not found", status="4.4.4"), "networkerror"),
    (
        "spam after data",
        E(text="550 spam detected", status="5.7.1", command="DATA"),
        "spamdetected",
    ),
    # Refused before DATA the spam check is skipped; the text order still reads the words.
    (
        "spam before data",
        E(text="550 spam detected", status="5.7.1", command="RCPT"),
        "spamdetected",
    ),
    ("speeding", E(text="421 please try again slower", status="4.7.0"), "speeding"),
    ("connections", E(text="421 too many connections", status="4.7.0"), "toomanyconn"),
    ("block list", E(text="554 blocked using zen.example", status="5.7.1"), "blocked"),
    # The second look: text order, named code, status class, X-Unix, syntax, delay, greeting.
    ("virus", E(text="554 virus detected in attachment"), "virusdetected"),
    ("policy", E(text="550 local policy violation"), "policyviolation"),
    ("named code", E(text="550 whatever", status="5.3.2"), "notaccept"),
    ("revisable code", E(text="550 whatever", status="5.7.7"), "securityerror"),
    ("media class", E(text="554 whatever", status="5.6.4"), "contenterror"),
    ("security class", E(text="554 whatever", status="5.7.99"), "securityerror"),
    ("local program", E(text="exit status 75", diagnostic_type="x-unix"), "mailererror"),
    ("syntax reply", E(text="503 bad sequence", replycode="503"), "syntaxerror"),
    ("delayed", E(text="whatever", action="delayed"), "expired"),
    ("greeting", E(text="554 whatever", command="CONN"), "blocked"),
    # The last resort: broad words, a refused MAIL FROM, onhold, undefined.
    ("broad word", E(text="550 your message looks like spam somehow"), "spamdetected"),
    ("mail from", E(text="550 go figure", command="MAIL"), "rejected"),
    ("words", E(text="550 go figure"), "onhold"),
    ("nothing", E(), "undefined"),
]


@pytest.mark.parametrize(("label", "evidence", "reason"), ROWS, ids=[row[0] for row in ROWS])
def test_rule(label: str, evidence: Evidence, reason: str) -> None:
    assert decide(evidence) == reason
