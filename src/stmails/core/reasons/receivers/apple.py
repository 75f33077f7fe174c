"""Apple (iCloud Mail: icloud.com, me.com, mac.com): the refusal texts of its inbound
servers, as its postmaster page and their replies state them."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = (".mail.icloud.com", ".apple.com", ".me.com")

TEXTS: Final[Texts] = (
    (
        "authfailure",
        ("s dmarc policy", "blocked for failing both spf and dkim autentication checks"),
    ),
    (
        "blocked",
        (
            "rejected due to having a domain present in the spamhaus",
            "rejected due to listing in spamhaus",
            "blocked - see https://support.proofpoint.com/dnsbl-lookup",
            "not accepting connections",
        ),
    ),
    ("hasmoved", ("recipient no longer on server",)),
    ("mailboxfull", ("user is over quota",)),
    ("norelaying", ("relay access denied",)),
    ("notaccept", ("host/domain does not accept mail",)),
    ("policyviolation", ("due to local policy",)),
    ("rejected", ("sender address rejected",)),
    ("speeding", ("due to excessive volume",)),
    ("userunknown", ("inactive email address", "user does not exist", "unknown or illegal alias")),
)


def reason(ev: Evidence) -> str:
    """The reason iCloud's reply in the evidence states, or ""."""
    return first_stated(TEXTS, ev.text)
