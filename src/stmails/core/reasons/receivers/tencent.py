"""Tencent (QQ Mail, Foxmail, Exmail): the refusal texts its postmaster help pages document
(service.mail.qq.com/detail/122/...)."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = (".qq.com",)

# (reason, texts) in the order they are tried.
TEXTS: Final[Texts] = (
    ("authfailure", ("spf check failed", "dmarc check failed")),
    ("blocked", ("suspected bounce attacks", "suspected spam ip", "connection denied")),
    ("mesgtoobig", ("message too large",)),
    ("rejected", ("suspected spam", "mail is rejected by recipients")),
    ("spamdetected", ("spam is embedded in the email", "mail content denied")),
    ("speeding", ("mailbox unavailable or access denined", "mailbox unavailable or access denied")),
    ("suspend", ("is a deactivated mailbox",)),
    ("syntaxerror", ("bad address syntax",)),
    (
        "toomanyconn",
        (
            "ip frequency limited",
            "domain frequency limited",
            "sender frequency limited",
            "connection frequency limited",
        ),
    ),
    ("userunknown", ("mailbox not found",)),
)


def reason(ev: Evidence) -> str:
    """The reason Tencent's documented text in the evidence states, or ""."""
    return first_stated(TEXTS, ev.text)
