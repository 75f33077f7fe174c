"""Bounces of mail that listmonk sent name the campaign and subscriber in listmonk's own
headers (`X-Listmonk-Campaign`, `X-Listmonk-Subscriber`): they attribute the bounce as ours do,
so that bounces of mail sent before a move from listmonk still find their campaign."""

from __future__ import annotations

import pytest

from stmails.core import classify

CAMPAIGN = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
SUBSCRIBER = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"


def dsn(original_type: str, headers: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.sender.example
To: bounces@sender.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.sender.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

<gone@dest.example>: host mx.dest.example said: 550 5.1.1 User unknown

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sender.example

Final-Recipient: rfc822; gone@dest.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B1
Content-Type: {original_type}

From: News <news@sender.example>
To: gone@dest.example
Subject: Weekly news
Message-ID: <m-1@sender.example>
{headers}

--B1--
""".replace("\n", "\r\n").encode()


@pytest.mark.parametrize("original_type", ["text/rfc822-headers", "message/rfc822"])
def test_listmonk_headers_attribute_the_bounce(original_type: str) -> None:
    headers = f"X-Listmonk-Campaign: {CAMPAIGN}\nX-Listmonk-Subscriber: {SUBSCRIBER}"
    (record,) = classify(dsn(original_type, headers))
    assert (record.recipient, record.type) == ("gone@dest.example", "hard")
    assert (record.campaign, record.subscriber) == (CAMPAIGN, SUBSCRIBER)


def test_our_headers_win_over_listmonks_when_both_are_there() -> None:
    other = "11111111-2222-4333-8444-555555555555"
    headers = f"X-Listmonk-Campaign: {other}\nX-Stmails-Campaign: {CAMPAIGN}"
    (record,) = classify(dsn("text/rfc822-headers", headers))
    assert record.campaign == CAMPAIGN
