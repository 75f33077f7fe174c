"""Each standard format and the generic reader, on our own small sample messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from stmails.core import REASONS, BounceRecord, bounce_type, classify
from stmails.core.classifier import decide_reason
from stmails.core.dsn import parse_delivery_status
from stmails.core.finding import Finding

DATA = Path(__file__).resolve().parent.parent / "data" / "core"


def records(name: str) -> list[BounceRecord]:
    return classify((DATA / name).read_bytes())


def test_dsn_reports_each_recipient_with_fields_and_original_headers() -> None:
    alice, bob = records("dsn-userunknown.eml")
    assert (alice.recipient, alice.reason, alice.hard, alice.type) == (
        "alice@dest.example",
        "userunknown",
        True,
        "hard",
    )
    assert (alice.status, alice.replycode, alice.action) == ("5.1.1", "550", "failed")
    assert alice.remote_mta == "mx.dest.example"
    assert alice.reporting_mta == "mx.sender.example"
    assert "User unknown" in alice.diagnostic
    assert alice.subject == "Weekly news"
    assert alice.message_id == "<abc123@sender.example>"
    assert alice.from_ == "news@sender.example"
    assert alice.campaign == "7b0c6f0e-0000-4000-8000-000000000001"
    assert alice.subscriber == "7b0c6f0e-0000-4000-8000-000000000002"
    assert alice.detector == "dsn"
    assert alice.timestamp == "2026-03-02T10:00:00+00:00"
    assert (bob.reason, bob.hard, bob.type, bob.status, bob.action) == (
        "mailboxfull",
        False,
        "soft",
        "4.2.2",
        "delayed",
    )


def test_arf_complaint() -> None:
    (carol,) = records("arf-abuse.eml")
    assert carol.recipient == "carol@isp.example"
    assert (carol.reason, carol.type, carol.hard) == ("feedback", "complaint", False)
    assert carol.feedback_type == "abuse"
    assert carol.user_agent == "ExampleFBL/1.0"
    assert carol.campaign == "camp-1"
    assert bounce_type(carol) == "complaint"


@pytest.mark.parametrize(
    "name", ["autoreply-rfc3834.eml", "autoreply-chinese.eml", "autoreply-exchange-oof.eml"]
)
def test_auto_replies_are_vacation_and_never_bounces(name: str) -> None:
    (reply,) = records(name)
    assert reply.reason == "vacation"
    assert reply.type is None
    assert not reply.hard


def test_generic_reader_splits_recipients_and_diagnostics_crlf() -> None:
    frank, grace = records("qmail-two-recipients.eml")
    assert (frank.recipient, frank.reason, frank.status, frank.replycode) == (
        "frank@dest.example",
        "mailboxfull",
        "5.2.2",
        "552",
    )
    assert (grace.recipient, grace.reason, grace.status, grace.hard) == (
        "grace@other.example",
        "hostunknown",
        "5.1.2",
        True,
    )
    assert frank.message_id == "<q1@sender.example>"


def test_x_failed_recipients_and_block_list() -> None:
    (heidi,) = records("exim-blocked.eml")
    assert heidi.recipient == "heidi@dest.example"
    assert heidi.reason == "blocked"
    assert not heidi.hard
    assert heidi.type == "soft"
    assert heidi.subject == "Weekly news"


@pytest.mark.parametrize(
    "name",
    [
        "not-a-bounce.eml",
        "not-a-bounce-rejected-subject.eml",
        "not-a-bounce-noreply.eml",
        "not-a-bounce-vacation-photos.eml",
    ],
)
def test_ordinary_mail_yields_nothing(name: str) -> None:
    assert records(name) == []


def test_every_reason_is_in_the_vocabulary() -> None:
    for path in DATA.glob("*.eml"):
        for record in classify(path.read_bytes()):
            assert record.reason in REASONS


def test_to_dict_uses_from_key() -> None:
    (carol,) = records("arf-abuse.eml")
    data = carol.to_dict()
    assert data["from"] == "news@sender.example"
    assert "from_" not in data
    assert data["type"] == "complaint"


def test_found_status_is_kept_and_missing_status_is_inferred_and_flagged() -> None:
    for path in sorted(DATA.glob("*.eml")):
        for record in classify(path.read_bytes()):
            data = record.to_dict()
            assert data["status_inferred"] is record.status_inferred
            if record.status_inferred:
                assert record.status and record.status not in path.read_text(errors="replace")
    (judy,) = records("ses-bounce.eml")
    assert (judy.status, judy.status_inferred) == ("5.1.1", False)
    # qmail states only the reply code: the unknown mailbox's standard code is inferred.
    (gone,) = records("qmail-no-status.eml")
    assert (gone.reason, gone.replycode, gone.status, gone.status_inferred) == (
        "userunknown",
        "550",
        "5.1.1",
        True,
    )


def test_amazon_ses_notification_mail() -> None:
    (judy,) = records("ses-bounce.eml")
    assert (judy.recipient, judy.reason, judy.status, judy.replycode, judy.hard) == (
        "judy@dest.example",
        "userunknown",
        "5.1.1",
        "550",
        True,
    )
    assert judy.detector == "amazonses"
    assert judy.reporting_mta == "a1-2.smtp-out.us-east-1.amazonses.com"


def test_google_groups_refusal_is_rejected_not_a_bad_address() -> None:
    (group,) = records("googlegroups.eml")
    assert (group.recipient, group.reason, group.hard, group.detector) == (
        "team-list@googlegroups.com",
        "rejected",
        False,
        "googlegroups",
    )


def test_to_event_for_bounces_and_complaints_only() -> None:
    alice, _ = records("dsn-userunknown.eml")
    event = alice.to_event()
    assert event is not None
    assert (event.source, event.type, event.email, event.reason) == (
        "mailbox",
        "hard",
        "alice@dest.example",
        "userunknown",
    )
    assert event.campaign_uuid == "7b0c6f0e-0000-4000-8000-000000000001"
    assert event.occurred_at is not None and event.occurred_at.year == 2026
    assert event.meta["detector"] == "dsn"
    (reply,) = records("autoreply-rfc3834.eml")
    assert reply.to_event() is None


def test_mailing_list_refusal_of_a_non_member() -> None:
    (olga,) = records("fml-not-member.eml")
    assert (olga.recipient, olga.reason, olga.hard, olga.detector) == (
        "olga@sender.example",
        "rejected",
        False,
        "fml",
    )


def test_unclassified_server_words_are_onhold_and_no_cause_is_undefined() -> None:
    def reason(diagnostic: str) -> str:
        return decide_reason(
            Finding(recipient="a@b.example", diagnostic=diagnostic, action="failed")
        )

    assert reason("Error (as a test message)") == "onhold"
    assert reason("Your message could not be delivered to one or more recipients.") == "undefined"
    assert reason("") == "undefined"


@pytest.mark.parametrize(
    ("diagnostic", "status", "replycode", "reason"),
    [
        # A remote "unknown user" reply not tied to RCPT came from a filter after acceptance.
        ("550 kijitora@example.org... No such user", "", "550", "filtered"),
        ("550 5.7.1 550 User Unknown: a@b.example", "5.7.1", "550", "filtered"),
        # ...unless the enhanced code names the destination mailbox, or RCPT is named.
        ("550 5.1.1 <a@b.example>... User Unknown", "5.1.1", "550", "userunknown"),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "5.1.10", "550", "userunknown"),
        ("550 unknown user (in reply to RCPT TO command)", "", "550", "userunknown"),
        # The reporting MTA's own words (no quoted reply) are its directory lookup.
        ("Unknown user: a@b.example", "", "", "userunknown"),
        # A refused sender stays a sender problem.
        ("550 unknown user (in reply to MAIL FROM command)", "", "550", "rejected"),
    ],
)
def test_unknown_user_phase(diagnostic: str, status: str, replycode: str, reason: str) -> None:
    finding = Finding(
        recipient="a@b.example",
        diagnostic=diagnostic,
        status=status,
        replycode=replycode,
        action="failed",
    )
    assert decide_reason(finding) == reason


def test_powermta_bounce_category_decides() -> None:
    report = parse_delivery_status(
        "Reporting-MTA: dns; mta.sender.example\n\n"
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.2.1\n"
        "Diagnostic-Code: smtp;550 5.2.1 <a@b.example>... User Unknown\n"
        "X-PowerMTA-BounceCategory: bad-mailbox\n"
    )
    assert [b.category_reason for b in report.recipients] == ["userunknown"]
