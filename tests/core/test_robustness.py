"""Adversarial input: every worst case returns (possibly empty) results without raising, and a
bounded fuzz run finds no exception. Timing lives in benchmarks/parse_worst_cases.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stmails.core import REASONS, classify

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worst_cases import WORST_CASES, cpu_seconds, dash_run


@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_worst_case_is_handled(name: str) -> None:
    records = classify(WORST_CASES[name]())
    assert all(record.reason in REASONS for record in records)
    assert len(records) <= 500


def test_a_long_run_of_dashes_after_a_recipient_costs_linear_time() -> None:
    # Issue 11, H1: 1,600 dashes took 4 s and 32 KB hours. The budget is the growth from n to
    # 4n characters in CPU time (about 4 when linear, 64 when cubic), not a wall-clock limit;
    # a first run at n that takes half a second (a linear reading takes milliseconds) fails
    # at once instead of waiting for the run at 4n.
    (record,) = classify(dash_run(1500))
    assert record.recipient == "a@b.example"
    assert cpu_seconds(classify, dash_run(1500), 1) < 0.5
    small = cpu_seconds(classify, dash_run(4000))
    large = cpu_seconds(classify, dash_run(16000))
    assert large < 9 * max(small, 0.001)


def test_line_end_variants_give_identical_results() -> None:
    data = (
        Path(__file__).resolve().parent.parent / "data" / "core" / "dsn-userunknown.eml"
    ).read_bytes()
    lf = data.replace(b"\r\n", b"\n")
    results = [classify(lf.replace(b"\n", ending)) for ending in (b"\n", b"\r\n", b"\r")]
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 2


_FRAGMENTS = st.sampled_from(
    [
        b"From: MAILER-DAEMON@x.example\n",
        b"Subject: Undelivered Mail\n",
        b'Content-Type: multipart/report; boundary="b"\n',
        b"Content-Type: message/delivery-status\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Transfer-Encoding: quoted-printable\n",
        b"--b\n",
        b"--b--\n",
        b"\n",
        b"Final-Recipient: rfc822; a@b.example\n",
        b"Status: 5.1.1\n",
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n",
        b"Subject: =?utf-8?B?5Lit?= =?x-unknown?Q?=FF?=\n",
        b"<a@b.example>: 552 mailbox full\n",
        b"Feedback-Type: abuse\n",
        b"Content-Type: message/feedback-report\n",
        b"\r\n",
        b"\r",
        b" folded\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_FRAGMENTS, st.binary(max_size=40)), max_size=40))
def test_fuzz_never_raises(chunks: list[bytes]) -> None:
    records = classify(b"".join(chunks))
    assert all(record.reason in REASONS for record in records)


def test_quoted_original_headers_with_non_latin1_text() -> None:
    raw = (
        "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "<a@dest.example>: 550 5.1.1 user unknown\n\n"
        "------ This is a copy of the message, including all the headers. ------\n"
        "From: Zoë 中文 <z@sender.example>\nSubject: caf\ufffd\n"
    ).encode()
    (record,) = classify(raw)
    assert record.recipient == "a@dest.example"
    assert record.from_ == "z@sender.example"


@pytest.mark.parametrize(
    "body",
    [
        b'{"notificationType":"Bounce","bounce":[1,2]}',
        b'{"notificationType":"Complaint","complaint":{"complainedRecipients":5}}',
        b'{"notificationType":"Delivery","delivery":{"recipients":"a@b.example"}}',
        b'{"Message": 5, "notificationType":"Bounce"}',
        b'{"notificationType":"Bounce","bounce":{"bouncedRecipients":[{"emailAddress":1}]}}',
    ],
)
def test_ses_notifications_with_wrong_types_are_ignored(body: bytes) -> None:
    head = b"From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n"
    assert classify(head + body) == []
