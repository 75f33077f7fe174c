"""Our own sample reports, one per format, receiving provider or reporting MTA the classifier
reads: each gives these records (recipient, reason, hard, detector, status)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stmails.core import classify

DATA = Path(__file__).resolve().parent.parent / "data" / "core"

Row = tuple[str, str, bool, str, str]

SAMPLES: dict[str, list[Row]] = {
    # Receiving providers: their documented codes and texts decide.
    "google-receiving-rate.eml": [("mio@gmail.example", "speeding", False, "postfix", "5.2.1")],
    "microsoft-banned-ip.eml": [("ken@outlook.example", "blocked", False, "postfix", "5.7.606")],
    "mimecast-virus.eml": [("ida@corp.example", "virusdetected", False, "postfix", "5.0.0")],
    "godaddy-ib-code.eml": [("ron@shop.example", "speeding", False, "postfix", "5.7.1")],
    "tencent-frequency.eml": [("wen@qq.example", "toomanyconn", False, "postfix", "5.0.0")],
    "docomo-unknown-at-data.eml": [("hana@docomo.ne.jp", "rejected", False, "postfix", "5.0.0")],
    "yahoo-tss04.eml": [("jim@yahoo.example", "rejected", False, "postfix", "4.7.0")],
    "spectrum-aup.eml": [("sam@charter.net", "toomanyconn", False, "postfix", "5.1.0")],
    # The reporting MTA's own words.
    "exim-mx-nonexistent.eml": [("lou@nomx.example", "hostunknown", True, "exim", "5.1.2")],
    "qmail-disk-quota.eml": [("full@dest.example", "mailboxfull", False, "qmail", "5.2.2")],
    "exchange-recipnotfound.eml": [
        ("gone@corp.example", "userunknown", True, "exchange2007", "5.1.10")
    ],
    "gmail-state-after-data.eml": [("pia@dest.example", "filtered", False, "gmail", "5.7.0")],
    "opensmtpd-no-mx.eml": [("noah@nomx.example", "notaccept", True, "opensmtpd", "5.3.2")],
    "imail-invalid-userid.eml": [
        ("rita@dest.example", "userunknown", True, "imailserver", "5.1.1")
    ],
    "interscan-unable.eml": [("tom@dest.example", "userunknown", True, "trendmicro", "5.1.1")],
    "facebook-rcp-p2.eml": [("zoe@facebook.com", "filtered", False, "facebook", "5.1.1")],
    # Formats and layouts.
    "arf-undisclosed-recipient.eml": [("", "feedback", False, "arf", "")],
    "ses-quoted-status.eml": [("una@dest.example", "securityerror", False, "dsn", "5.7.1")],
    "sendmail-expanded-from.eml": [("vic@dest.example", "userunknown", True, "sendmail", "5.1.1")],
    "aol-screen-names.eml": [
        ("walt@aol.com", "filtered", False, "aol", "5.2.0"),
        ("xena@aol.com", "filtered", False, "aol", "5.2.0"),
    ],
    "dsn-original-recipient.eml": [("yuki@dest.example", "mailboxfull", False, "postfix", "5.2.2")],
    "bounce-of-a-bounce.eml": [("zack@dest.example", "userunknown", True, "postfix", "5.1.1")],
    "sendmail-multiline-reply.eml": [
        ("ava@gmail.example", "authfailure", False, "sendmail", "5.7.26")
    ],
    "exchange-x400-address.eml": [
        ("ben@corp.example", "userunknown", True, "exchange2003", "5.1.1")
    ],
    "quoted-address-not-collected.eml": [
        ("cleo@dest.example", "expired", False, "generic", "5.4.7")
    ],
    "directory-lookup-addressed.eml": [("dora@dest.example", "onhold", False, "generic", "5.0.0")],
    "local-mailbox-unavailable.eml": [("eve@dest.example", "userunknown", True, "exim", "5.1.1")],
    "sendmail-v5-mail-refused.eml": [
        ("fay@first.example", "blocked", False, "sendmail", "5.7.1"),
        ("gil@second.example", "userunknown", True, "sendmail", "5.1.1"),
    ],
    # A returned list post names no member: the list's own address is nobody's failure.
    "list-post-returned.eml": [],
    "postfix-mail-from-access-denied.eml": [
        ("ann@dest.example", "rejected", False, "postfix", "5.7.1")
    ],
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_gives_its_records(name: str) -> None:
    found = classify((DATA / name).read_bytes())
    assert [(r.recipient, r.reason, r.hard, r.detector, r.status) for r in found] == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_reads_the_same_with_any_line_end(name: str) -> None:
    lf = (DATA / name).read_bytes().replace(b"\r\n", b"\n")
    assert (
        classify(lf.replace(b"\n", b"\r\n")) == classify(lf) == classify(lf.replace(b"\n", b"\r"))
    )


def test_a_complaint_without_a_named_recipient_keeps_the_subscriber() -> None:
    (record,) = classify((DATA / "arf-undisclosed-recipient.eml").read_bytes())
    assert record.type == "complaint"
    assert record.subscriber == "7b0c6f0e-0000-4000-8000-0000000000c3"
    event = record.to_event("mailbox")
    assert event is not None and event.subscriber_uuid == record.subscriber and event.email == ""
