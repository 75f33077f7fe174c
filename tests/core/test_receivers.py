"""Receiving providers' documented codes and texts, one row per rule, asked the way the
classifier asks them: by the answering host or the recipient's domain."""

from __future__ import annotations

import pytest

from stmails.core.reasons import REASONS, RECEIVERS, Evidence, reason_from_receiver, receiver_for

# (remote MTA, recipient, reply code, status, text, reason)
ROWS: list[tuple[str, str, str, str, str, str]] = [
    # Google: the text with both codes (class digits aside).
    (
        "dns; gmail-smtp-in.l.google.com",
        "a@b.example",
        "550",
        "5.7.26",
        "This message does not have authentication information or fails to pass authentication "
        "checks (SPF or DKIM); senders to authenticate with either spf or dkim",
        "authfailure",
    ),
    (
        "aspmx.l.google.com",
        "a@b.example",
        "452",
        "4.2.2",
        "The email account that you tried to reach is over quota.",
        "mailboxfull",
    ),
    # ...but not with other codes.
    ("aspmx.l.google.com", "a@b.example", "550", "5.1.1", "is over quota", ""),
    # Microsoft: exact codes, and numbered families.
    (
        "mail.protection.outlook.com",
        "a@b.example",
        "550",
        "5.7.606",
        "Access denied, banned sending IP [192.0.2.1]",
        "blocked",
    ),
    (
        "",
        "a@outlook.com",
        "550",
        "5.7.509",
        "Access denied, sending domain does not pass DMARC verification",
        "authfailure",
    ),
    (
        "x.prod.outlook.com",
        "a@b.example",
        "550",
        "5.4.1",
        "Recipient address rejected: Access denied. AS(201806281)",
        "userunknown",
    ),
    # Mimecast: the reply code with the text.
    (
        "eu-smtp-1.mimecast.com",
        "a@b.example",
        "554",
        "",
        "Email rejected due to security policies",
        "virusdetected",
    ),
    (
        "eu-smtp-1.mimecast.com",
        "a@b.example",
        "550",
        "",
        "Email rejected due to security policies",
        "",
    ),
    (
        "us-smtp-1.mimecast.com",
        "a@b.example",
        "550",
        "",
        "Envelope blocked - User Entry",
        "rejected",
    ),
    # GoDaddy: an IB code decides before the words.
    (
        "smtp.secureserver.net",
        "a@b.example",
        "550",
        "5.1.1",
        "<a@b.example> recipient not found. IB212 <http://x.co/rlbounce>",
        "spamdetected",
    ),
    (
        "smtp.secureserver.net",
        "a@b.example",
        "550",
        "5.1.1",
        "<a@b.example> recipient not found",
        "userunknown",
    ),
    # Spectrum: AUP# numbers by range.
    ("", "a@charter.net", "550", "5.1.0", "sender rejected AUP#In-1350", "speeding"),
    ("", "a@charter.net", "550", "5.1.0", "sender rejected AUP#CXSNDR-1100", "requireptr"),
    # Tencent.
    (
        "mx1.qq.com",
        "a@b.example",
        "550",
        "",
        "Mail content denied. http://service.mail.qq.com",
        "spamdetected",
    ),
    ("mx1.qq.com", "a@b.example", "550", "", "Domain frequency limited", "toomanyconn"),
    # NTT docomo: the phase decides "Unknown user".
    ("mfsmax.docomo.ne.jp", "a@docomo.ne.jp", "550", "5.1.1", "Unknown user", "userunknown"),
    ("mfsmax.docomo.ne.jp", "a@docomo.ne.jp", "552", "", "552 too much mail data", "mailboxfull"),
    # au/KDDI: the address left out of the reply is the domain filter.
    ("lsean.ezweb.ne.jp", "a@ezweb.ne.jp", "550", "", "550 : User unknown", "filtered"),
    (
        "lsean.ezweb.ne.jp",
        "a@ezweb.ne.jp",
        "550",
        "",
        "550 <a@ezweb.ne.jp>: User unknown",
        "userunknown",
    ),
    # i.ua: the error page number.
    (
        "mx.email.ua",
        "a@email.ua",
        "550",
        "",
        "Mailbox full, see https://mail.i.ua/err/4/",
        "mailboxfull",
    ),
    # Apple iCloud.
    (
        "mx01.mail.icloud.com",
        "a@icloud.example",
        "550",
        "5.1.1",
        "<a@icloud.example>: inactive email address",
        "userunknown",
    ),
    # Cox: AUP# codes, IPBL families.
    ("", "a@cox.net", "554", "", "rejected AUP#IPBL0010", "blocked"),
    ("", "a@cox.net", "550", "", "too many sessions from 192.0.2.1", "toomanyconn"),
    # Orange / La Poste: the last three digits of the code.
    (
        "smtp-in.orange.fr",
        "a@orange.fr",
        "550",
        "5.5.0",
        "Adresse invalide. LPN007_416",
        "userunknown",
    ),
    # Yahoo: its own servers' texts.
    (
        "mta6.am0.yahoodns.net",
        "a@yahoo.example",
        "554",
        "5.7.9",
        "Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes",
        "policyviolation",
    ),
    # A host no provider owns.
    ("mx.b.example", "a@b.example", "550", "5.1.1", "user unknown", ""),
]


@pytest.mark.parametrize(("remote", "recipient", "reply", "status", "text", "reason"), ROWS)
def test_receiver_row(
    remote: str, recipient: str, reply: str, status: str, text: str, reason: str
) -> None:
    evidence = Evidence(text=text, status=status, replycode=reply)
    assert reason_from_receiver(remote, recipient, evidence) == reason


def test_tables_name_only_known_reasons() -> None:
    import importlib

    for receiver in RECEIVERS:
        module = importlib.import_module(f"stmails.core.reasons.receivers.{receiver.name}")
        for table_name in ("ERRORS", "TEXTS"):
            for row in getattr(module, table_name, ()):
                assert row[0] in REASONS, (receiver.name, row)
        for value in getattr(module, "CODES", {}).values():
            assert value in REASONS, receiver.name


@pytest.mark.parametrize(
    ("remote", "recipient", "name"),
    [
        ("dns; alt1.gmail-smtp-in.l.google.com", "a@b.example", "google"),
        ("[192.0.2.1]", "a@outlook.com", "microsoft"),
        ("mx.b.example (192.0.2.1)", "a@qq.com", "tencent"),
        ("", "a@au.com", "kddi"),
        ("", "a@b.example", None),
        ("mx.notqq.com.example", "a@b.example", None),
        ("", "a@example.com", None),
    ],
)
def test_receiver_is_found_by_host_or_domain(remote: str, recipient: str, name: str | None) -> None:
    found = receiver_for(remote, recipient)
    assert (found.name if found is not None else None) == name
