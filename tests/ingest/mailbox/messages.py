"""Bounce, complaint and non-bounce messages built for the mailbox tests."""

from __future__ import annotations

from pathlib import Path

CORE_DATA = Path(__file__).resolve().parents[2] / "data" / "core"

CAMPAIGN = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
SUBSCRIBER = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"


def dsn(
    recipient: str,
    *,
    to: str = "bounces@sender.example",
    subject: str = "Undelivered Mail Returned to Sender",
    campaign: str = CAMPAIGN,
    subscriber: str = SUBSCRIBER,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    message_id: str = "abc123@sender.example",
) -> bytes:
    """A Postfix-style RFC 3464 report for one recipient, quoting the original's headers."""
    diag = diagnostic.format(rcpt=recipient)
    return f"""Return-Path: <>
Delivered-To: {to}
From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>
To: {to}
Subject: {subject}
Message-ID: <dsn-{message_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="BOUNDARY-1"

--BOUNDARY-1
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.dest.example[192.0.2.10] said: {diag}

--BOUNDARY-1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sender.example

Final-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mx.dest.example
Diagnostic-Code: smtp; {diag}

--BOUNDARY-1
Content-Type: text/rfc822-headers

From: News <news@sender.example>
To: {recipient}
Subject: Weekly news
Message-ID: <{message_id}>
X-Stmails-Campaign: {campaign}
X-Stmails-Subscriber: {subscriber}

--BOUNDARY-1--
""".replace("\n", "\r\n").encode()


def human_reply(subject: str = "Re: Weekly news") -> bytes:
    return (
        "From: Reader <reader@dest.example>\r\nTo: news@sender.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <reply-1@dest.example>\r\n\r\n"
        "Thanks, but please send it on Mondays.\r\n"
    ).encode()


def core_sample(name: str) -> bytes:
    return (CORE_DATA / name).read_bytes()
