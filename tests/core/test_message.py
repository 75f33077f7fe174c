"""The bounded MIME reader and the small field extractors."""

from __future__ import annotations

import pytest

from stmails.core.fields import clean_address, find_command, find_replycode, find_status
from stmails.core.message import (
    decode_header,
    normalize,
    parse_content_type,
    parse_message,
    split_headers,
    walk,
)


def test_normalize_unifies_line_ends_and_drops_nul() -> None:
    assert normalize(b"a\r\nb\rc\n\x00d") == "a\nb\nc\nd"


def test_split_headers_unfolds_and_stops_at_a_stray_line() -> None:
    headers, body = split_headers(
        "From MAILER-DAEMON x\nSubject: a\n  b\nTo: x@y.example\nnot a header\nrest"
    )
    assert headers == [("subject", "a b"), ("to", "x@y.example")]
    assert body == "not a header\nrest"


def test_content_type_parameters_and_missing_semicolon() -> None:
    assert parse_content_type('multipart/report; BOUNDARY="b c"; report-type=x') == (
        "multipart/report",
        {"boundary": "b c", "report-type": "x"},
    )
    assert parse_content_type('text/plain charset="iso-2022-jp"')[1]["charset"] == "iso-2022-jp"


def test_rfc2047_words_and_unknown_charsets() -> None:
    assert decode_header("=?UTF-8?B?5pel5pys?= =?utf-8?q?_ok?=") == "日本 ok"
    assert decode_header("=?x-unknown?Q?caf=C3=A9?=") == "café"


def test_multipart_with_mistyped_boundary_is_still_split() -> None:
    raw = (
        b'Content-Type: multipart/report; boundary="declared"\n\n'
        b"--actual\nContent-Type: text/plain\n\nhello\n"
        b"--actual\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n--actual--\n"
    )
    types = [part.content_type for part in walk(parse_message(raw))]
    assert types == ["multipart/report", "text/plain", "message/delivery-status"]


def test_base64_and_quoted_printable_bodies() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n5pel5pys\n"
    )
    assert parse_message(raw).text() == "日本"
    qp = b"Content-Transfer-Encoding: quoted-printable\n\nmailbox=\n full =3D yes\n"
    assert parse_message(qp).text() == "mailbox full = yes\n"


@pytest.mark.parametrize(
    ("text", "status"),
    [("550 5.1.1 <a@b>", "5.1.1"), ("host 192.0.2.153 said", ""), ("(#5.4.4)", "5.4.4")],
)
def test_find_status(text: str, status: str) -> None:
    assert find_status(text) == status


def test_find_replycode_prefers_the_status_class() -> None:
    assert find_replycode("220-laposte 421 4.2.1 refused", "4.2.1") == "421"
    assert find_replycode("ERROR_CODE :550, ERROR_CODE :5.2.1", "5.2.1") == "550"
    assert find_replycode("queued as 12345", "") == ""


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("550 user unknown (in reply to RCPT TO command)", "RCPT"),
        ("SMTP error from remote mail server after MAIL FROM:<a@b> SIZE=1", "MAIL"),
        ("did not like our final DATA: 554 no", "DATA"),
        ("550 unknown [RCPT_TO]", "RCPT"),
        # The phase is the last command the transcript shows, even when pipelining.
        (">>> DATA\n<<< 550 5.1.1 <a@b>... User unknown\n<<< 503 5.0.0 Need RCPT", "DATA"),
        (">>> RCPT To:<a@b>\n<<< 550 Unknown user a@b\n>>> DATA\n", "RCPT"),
        (">>> DATA\n<<< 550 Unknown user a@b\n", "DATA"),
        ("550 <a@b>: Recipient address rejected. (in reply to RCPT\n    TO command)", "RCPT"),
        ("    >>> RCPT TO:<a@b>\n    <<< 550 <a@b>: User unknown\n", "RCPT"),
        ("192.0.2.1 does not like recipient.\nRemote host said: 550 no such user", "RCPT"),
        ("SMTP:RCPT host 192.0.2.2: 553 5.3.0 <a@b>... No such user here", "RCPT"),
        ("** Address not found **\nThe response was: 550 <a@b>: User unknown", "RCPT"),
        ("metadata was fine", ""),
    ],
)
def test_find_command(text: str, command: str) -> None:
    assert find_command(text) == command


def test_clean_address() -> None:
    assert clean_address("rfc822; <Alice@Example.ORG>") == "alice@example.org"
    assert clean_address("nobody") == ""
