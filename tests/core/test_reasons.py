"""The reason rules: text tables, status codes, precedence and the hard flag."""

from __future__ import annotations

import pytest

from stmails.core import REASONS, classify, is_hard, match_reason
from stmails.core.reasons import (
    HARD_REASONS,
    ORANGE_CODE_REASONS,
    REASON_PHRASES,
    STATUS_REASONS,
    infer_status,
    reason_from_provider_code,
)


@pytest.mark.parametrize(
    ("text", "status", "replycode", "reason"),
    [
        ("550 5.1.1 <a@b.example>: User unknown", "5.1.1", "550", "userunknown"),
        ("552 5.2.2 Mailbox full", "5.2.2", "552", "mailboxfull"),
        ("550 5.1.1 mailbox is full", "5.1.1", "550", "mailboxfull"),
        ("", "5.1.6", "", "hasmoved"),
        ("", "5.1.2", "", "hostunknown"),
        ("Host or domain name not found", "4.4.4", "", "networkerror"),
        ("Host or domain name not found", "5.4.4", "", "hostunknown"),
        ("554 Message rejected as spam", "", "554", "spamdetected"),
        ("550 Relay access denied", "", "550", "norelaying"),
        ("blocked using zen.spamhaus.org", "5.7.1", "554", "blocked"),
        ("message size exceeds fixed maximum message size", "5.3.4", "552", "mesgtoobig"),
        ("Delivery time expired", "", "", "expired"),
        (
            "450 service permits 2 unverifyable sending IPs - a.example is not 192.0.2.1",
            "",
            "450",
            "requireptr",
        ),
        ("550 domain [a.example] mismatches client ip 192.0.2.2.", "5.5.0", "550", "requireptr"),
        # Without the receiving host known, Mimecast's virus wording reads as a policy.
        (
            "554 email rejected due to security policies - MCSpamSignature",
            "",
            "554",
            "policyviolation",
        ),
        ("", "2.0.0", "250", "delivered"),
        # An ESP's diagnostic alone does not say the phase: unknown-user words are userunknown.
        ("550 No such user here", "", "550", "userunknown"),
        ("550 5.2.1 user unknown", "5.2.1", "550", "filtered"),
        ("550 Refused due to recipient preferences", "", "550", "filtered"),
        ("something nobody has ever said", "", "", "onhold"),
        ("", "", "", "undefined"),
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


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_416", "userunknown"),
        (
            "552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]",
            "mailboxfull",
        ),
        ("421 4.2.1 Service refuse. Veuillez essayer plus tard. LPN007_505", "systemerror"),
        ("421 Service refused, please try later. LPN006_107", "undefined"),
        ("Too many connections, slow down. LPN105-104", "toomanyconn"),
        ("550 5.1.1 user unknown MOFR_416", ""),
        ("550 5.1.0 <a@b.example> sender rejected. AUP#CDRBL", "blocked"),
        ("554 IP listed on block lists AUP#IPBL0011", "blocked"),
        ("550 URL found on block lists AUP#URLBL011", "spamdetected"),
        ("550 sender rejected AUP#NOSUCHCODE", ""),
        (
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
            "volume or user complaints; see https://postmaster.yahooinc.com/error-codes",
            "badreputation",
        ),
        ("553 5.7.1 [BL23] Connections not accepted; see http://postmaster.yahoo.com/", "blocked"),
        ("554 [PH01] Email not accepted for policy reasons. yahooinc.com", "policyviolation"),
        ("421 4.7.0 [TSS04] deferred by some other provider", ""),
        ("550 5.1.1 user unknown", ""),
    ],
)
def test_provider_code_decides(text: str, reason: str) -> None:
    assert reason_from_provider_code(text) == reason
    assert set(ORANGE_CODE_REASONS.values()) <= REASONS


@pytest.mark.parametrize(
    ("reason", "replycode", "action", "status"),
    [
        ("userunknown", "550", "failed", "5.1.1"),
        ("userunknown", "", "failed", "5.1.1"),
        ("hostunknown", "", "", "5.1.2"),
        ("mailboxfull", "452", "failed", "4.2.2"),
        ("mailboxfull", "", "delayed", "4.2.2"),
        ("mailboxfull", "552", "failed", "5.2.2"),
        ("expired", "", "delayed", "4.4.7"),
        ("expired", "", "failed", "5.4.7"),
        ("onhold", "421", "", "4.0.0"),
        ("delivered", "", "delivered", "2.0.0"),
        ("feedback", "", "", ""),
        ("vacation", "", "", ""),
    ],
)
def test_infer_status_from_reason_and_class(
    reason: str, replycode: str, action: str, status: str
) -> None:
    assert infer_status(reason, replycode, action) == status


def test_every_failure_reason_has_a_standard_code() -> None:
    for reason in REASONS - {"feedback", "vacation"}:
        code = infer_status(reason)
        assert code.count(".") == 2 and code[0] in "25", reason


def test_a_delay_warning_is_never_hard() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.sender.example\nTo: bounces@sender.example\n"
        b"Subject: Delivery Status Notification (Delay)\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="D"\n\n'
        b"--D\nContent-Type: text/plain\n\nStill trying.\n\n--D\n"
        b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.sender.example\n\n"
        b"Final-Recipient: rfc822; tia@dest.example\nAction: delayed\nStatus: 4.1.1\n"
        b"Diagnostic-Code: smtp; 450 4.1.1 <tia@dest.example>: Recipient address rejected: "
        b"User unknown in local recipient table (in reply to RCPT TO command)\n\n--D--\n"
    )
    (record,) = classify(raw)
    assert (record.reason, record.action, record.hard, record.type) == (
        "userunknown",
        "delayed",
        False,
        "soft",
    )
