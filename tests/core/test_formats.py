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
    assert alice.detector == "postfix"
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
    assert event.meta["detector"] == "postfix"
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


def reason_of(diagnostic: str, mta: str = "", **fields: str) -> str:
    """The reason decided for a failed recipient with this diagnostic and finding fields, in
    a report the MTA named `mta` wrote."""
    finding = Finding(recipient="a@b.example", diagnostic=diagnostic, action="failed", **fields)
    return decide_reason(finding, mta=mta)


def test_unclassified_server_words_are_onhold_and_no_cause_is_undefined() -> None:
    assert reason_of("Error (as a test message)") == "onhold"
    assert reason_of("Your message could not be delivered to one or more recipients.") == (
        "undefined"
    )
    assert reason_of("") == "undefined"


@pytest.mark.parametrize(
    ("diagnostic", "status", "replycode", "reason"),
    [
        # An "unknown user" reply not tied to RCPT came after the address was accepted: the
        # recipient's filter refused the message.
        ("550 kijitora@example.org... No such user", "", "550", "filtered"),
        ("550 5.7.1 550 User Unknown: a@b.example", "5.7.1", "550", "filtered"),
        ("Unknown user: a@b.example", "", "", "filtered"),
        # ...unless the enhanced code names the destination mailbox, or RCPT is named.
        ("550 5.1.1 <a@b.example>... User Unknown", "5.1.1", "550", "userunknown"),
        ("550 unknown user (in reply to RCPT TO command)", "", "550", "userunknown"),
        # A full mailbox is one whatever code the server sends with it.
        ("550 5.1.1 <a@b.example>: mailbox is full", "5.1.1", "550", "mailboxfull"),
        # A refused sender stays a sender problem.
        ("550 unknown user (in reply to MAIL FROM command)", "", "550", "rejected"),
        # Refused at the connection: the sending host, unless the words say why.
        (
            "SMTP error from remote mail server after initial connection: 554 go away",
            "",
            "554",
            "blocked",
        ),
        (
            "550 5.2.1 The email account that you tried to reach is disabled.",
            "5.2.1",
            "550",
            "suspend",
        ),
    ],
)
def test_unknown_user_phase(diagnostic: str, status: str, replycode: str, reason: str) -> None:
    assert reason_of(diagnostic, status=status, replycode=replycode) == reason


@pytest.mark.parametrize(
    ("mta", "diagnostic", "status", "reason"),
    [
        # What the reporting MTA says in its own words is a statement of the reason.
        (
            "exchange2007",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found",
            "5.1.10",
            "userunknown",
        ),
        ("", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "5.1.10", "filtered"),
        ("imailserver", "Unknown user: a@b.example", "", "userunknown"),
        (
            "domino",
            "Neko (a@b.example) は Domino ディレクトリには見つかりません。",
            "",
            "userunknown",
        ),
        # qmail names the session phase: a rejected HELO is a block, whatever follows.
        (
            "qmail",
            "Connected to 192.0.2.1 but my name was rejected. Remote host said: 501 5.0.0 "
            "Invalid domain name I'm not going to try again; this message has been in the "
            "queue too long.",
            "5.0.0",
            "blocked",
        ),
        # qmail's own table reads only the quoted reply: "does not like recipient" is the
        # phase, the reply is a full disk.
        (
            "qmail",
            "192.0.2.1 does not like recipient. Remote host said: 552 Error: disk quota "
            "exceeded Giving up on 192.0.2.1.",
            "",
            "mailboxfull",
        ),
        # Gmail's "(state N)" names the phase it was in.
        (
            "gmail",
            "The error that the other server returned was: 554 Header error (state 18).",
            "",
            "filtered",
        ),
    ],
)
def test_reporting_mta_states_a_reason(mta: str, diagnostic: str, status: str, reason: str) -> None:
    assert reason_of(diagnostic, mta=mta, status=status) == reason


def test_powermta_bounce_category_decides() -> None:
    report = parse_delivery_status(
        "Reporting-MTA: dns; mta.sender.example\n\n"
        "Final-Recipient: rfc822;a@b.example\nAction: failed\nStatus: 5.2.1\n"
        "Diagnostic-Code: smtp;550 5.2.1 <a@b.example>... User Unknown\n"
        "X-PowerMTA-BounceCategory: bad-mailbox\n"
    )
    assert [b.category_reason for b in report.recipients] == ["userunknown"]


def test_ses_receipt_rule_bounce_is_the_domains_filter() -> None:
    ses = {"status": "5.1.1", "replycode": "550"}
    text = "550 5.1.1 Mailbox does not exist"
    assert reason_of(text, reporting_mta="inbound-smtp.us-west-2.amazonaws.com", **ses) == (
        "filtered"
    )
    assert reason_of(text, reporting_mta="mx.b.example", **ses) == "userunknown"


@pytest.mark.parametrize(
    ("remote_mta", "reporting_mta", "reason"),
    [
        ("mail.b.example", "server-1.bemta-2.messagelabs.com", "userunknown"),
        ("lsean.ezweb.ne.jp (TCP|192.0.2.1|25)", "mta.sender.example", "userunknown"),
        ("", "BAY004-MC1F22.hotmail.com", "userunknown"),
        ("mail.b.example", "mta.sender.example", "filtered"),
        ("mail.notmessagelabs.com.example", "mta.sender.example", "filtered"),
    ],
)
def test_providers_that_refuse_unknown_recipients_at_rcpt(
    remote_mta: str, reporting_mta: str, reason: str
) -> None:
    found = reason_of(
        "550 a@b.example... No such user",
        status="5.0.0",
        replycode="550",
        remote_mta=remote_mta,
        reporting_mta=reporting_mta,
    )
    assert found == reason


def test_sendmail_records_each_end_the_previous_recipients_diagnostic() -> None:
    found = [(r.recipient, r.reason, r.diagnostic) for r in records("sendmail-v5-records.eml")]
    assert found == [
        ("kim@slow.example", "mailboxfull", "552 <kim@slow.example>... Mailbox full"),
        (
            "lea@gone.example",
            "hostunknown",
            "554 <lea@gone.example>... 550 Host unknown (Authoritative answer from name server)",
        ),
        ("max@dest.example", "userunknown", "<<< 550 No such user here"),
    ]
