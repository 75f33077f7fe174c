"""Signed Message-IDs of transactional mail, the Message-IDs a bounce refers to, and the
evidence the scanner gives each event."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from stmails.core.verp import make_address
from stmails.ingest.mailbox.scanner import message_events
from stmails.ingest.message_ids import (
    MAX_REFERENCES,
    make_message_id,
    normalized,
    referenced_ids,
    sent_to,
)

from .mailbox.messages import core_sample, dsn

SECRET = b"instance-secret"


def test_a_signed_message_id_verifies_for_its_recipient_only() -> None:
    made = make_message_id(SECRET, "mail.example.org", "Ann@Example.org")
    assert re.fullmatch(r"<[0-9a-f]{32}\.[a-z2-7]{16}@mail\.example\.org>", made)
    assert sent_to(SECRET, made, "ann@example.org")
    assert sent_to(SECRET, made.upper(), "ANN@EXAMPLE.ORG")
    assert not sent_to(SECRET, made, "bob@example.org")
    assert not sent_to(b"another-secret", made, "ann@example.org")
    assert not sent_to(b"", made, "ann@example.org")
    assert make_message_id(SECRET, "d", "a@b") != make_message_id(SECRET, "d", "a@b")


@given(st.text(max_size=300), st.text(max_size=80))
def test_made_up_message_ids_never_verify(message_id: str, recipient: str) -> None:
    assert not sent_to(SECRET, message_id, recipient)


@given(st.integers(min_value=1, max_value=48), st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
def test_an_altered_message_id_does_not_verify(position: int, replacement: str) -> None:
    made = make_message_id(SECRET, "mail.example.org", "ann@example.org")
    altered = made[:position] + replacement + made[position + 1 :]
    assert sent_to(SECRET, altered, "ann@example.org") == (altered.lower() == made)


def test_references_of_the_bounce_itself_are_read() -> None:
    raw = (
        b"From: postmaster@isp.example\r\nIn-Reply-To: <one@a.example>\r\n"
        b"References: <zero@a.example>\r\n  <one@a.example>\r\n\t<two@a.example> junk\r\n"
        b"Subject: x\r\n\r\nReferences: <body@a.example>\r\n"
    )
    assert referenced_ids(raw) == ["<one@a.example>", "<zero@a.example>", "<two@a.example>"]
    many = b"References: " + b" ".join(b"<%d@x>" % i for i in range(100)) + b"\r\n\r\n"
    assert len(referenced_ids(many)) == MAX_REFERENCES
    assert referenced_ids(b"no headers at all") == []
    assert normalized("  <abc@x.example> (comment)") == "<abc@x.example>"
    assert normalized("no brackets") == ""


def test_referenced_ids_stay_fast_on_hostile_headers() -> None:
    import time

    hostile = b"References: " + b"<" * 60_000 + b"\r\n\r\n"
    started = time.perf_counter()
    assert referenced_ids(hostile) == []
    assert time.perf_counter() - started < 1


def test_events_carry_their_evidence() -> None:
    signed = make_message_id(SECRET, "mail.example.org", "ann@dest.example")
    [event] = message_events(dsn("ann@dest.example", message_id=signed[1:-1]), verp_secret=SECRET)
    assert event.evidence is not None
    assert event.evidence.signed and not event.evidence.verp and event.evidence.sole
    assert event.evidence.message_ids == (signed,)
    # Signed for another address: no proof, but the Message-ID is still offered.
    [other] = message_events(dsn("bob@dest.example", message_id=signed[1:-1]), verp_secret=SECRET)
    assert other.evidence is not None and not other.evidence.signed
    token = make_address(SECRET, "bounce.example.org", 42)
    [verp] = message_events(
        dsn("cy@dest.example", to=token, subscriber=""),
        verp_secret=SECRET,
        verp_resolver=lambda t: t.__class__(subscriber_uuid="11111111-2222-4333-8444-555555555555"),
    )
    assert verp.evidence is not None and verp.evidence.verp
    [complaint] = message_events(core_sample("arf-abuse.eml"), verp_secret=SECRET)
    assert complaint.evidence is not None and complaint.evidence.message_ids
    two = dsn("dan@dest.example").replace(
        b"Final-Recipient: rfc822; dan@dest.example",
        b"Final-Recipient: rfc822; eva@dest.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"\r\nFinal-Recipient: rfc822; dan@dest.example",
    )
    events = message_events(two, verp_secret=SECRET)
    assert sorted(e.email for e in events) == ["dan@dest.example", "eva@dest.example"]
    messages = {e.evidence.message for e in events if e.evidence and not e.evidence.sole}
    assert len(messages) == 1 and messages != {event.evidence.message}
