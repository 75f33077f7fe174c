"""Naming the MTA that wrote a report read by the standard or generic reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from stmails.core import classify
from stmails.core.context import context_of
from stmails.core.mta import SIGNATURES, identify_mta

DATA = Path(__file__).resolve().parent.parent / "data" / "core"


def _message_with_mark(where: int, mark: str) -> bytes:
    """A plain report whose only MTA mark is `mark`, placed where the table looks for it."""
    headers = {
        "from": "From: MAILER-DAEMON@relay.example",
        "subject": "Subject: Delivery report",
        "message-id": "Message-ID: <r1@relay.example>",
        "received": "Received: from a.example by relay.example",
    }
    extra = ""
    body = "Your message to ann@dest.example failed: 550 5.1.1 no such mailbox\n"
    if where == 0:
        headers["from"] = f"From: Daemon <mailer-daemon{mark}>"
    elif where == 1:
        headers["subject"] = f"Subject: {mark}"
    elif where == 2:
        headers["message-id"] = f"Message-ID: <r1{mark}x@relay.example>"
    elif where == 3:
        headers["received"] = f"Received: from a.example by relay.example {mark})"
    elif where == 4:
        extra = f"{mark}: yes\n"
    elif where == 6:
        extra = f"X-Mailer: {mark}\n"
    else:
        body = f"{mark}\n\n{body}"
    return ("\n".join(headers.values()) + "\n" + extra + "\n" + body).encode()


@pytest.mark.parametrize(("name", "where", "mark"), SIGNATURES)
def test_each_signature_names_its_mta(name: str, where: int, mark: str) -> None:
    assert identify_mta(context_of(_message_with_mark(where, mark))) == name


def test_a_report_without_marks_is_unnamed() -> None:
    assert identify_mta(context_of(_message_with_mark(-1, "Hello"))) == ""


@pytest.mark.parametrize(
    ("sample", "detector"),
    [
        ("dsn-userunknown.eml", "postfix"),
        ("exim-blocked.eml", "exim"),
        ("qmail-two-recipients.eml", "qmail"),
        ("sendmail-v5-records.eml", "sendmail"),
    ],
)
def test_records_of_shared_readers_name_the_mta(sample: str, detector: str) -> None:
    found = classify((DATA / sample).read_bytes())
    assert found and {r.detector for r in found} == {detector}


def test_relay_stamps_do_not_outrank_the_writers_own_marks() -> None:
    raw = (DATA / "dsn-userunknown.eml").read_bytes()
    stamped = b"X-MS-Exchange-CrossTenant-Network-Message-Id: 1234\n" + raw
    assert {r.detector for r in classify(stamped)} == {"postfix"}
    unmarked = raw.replace(b"Undelivered Mail Returned to Sender", b"Delivery report")
    assert {r.detector for r in classify(unmarked)} == {"dsn"}
