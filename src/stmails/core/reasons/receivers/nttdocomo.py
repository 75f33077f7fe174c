"""NTT docomo (docomo.ne.jp): its receiving servers' replies. A docomo address that refuses a
sender by its filter settings answers "550 Unknown user" after DATA; the same words at RCPT
mean the mailbox does not exist."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = ("mfsmax.docomo.ne.jp",)

TEXTS: Final[Texts] = (
    ("mailboxfull", ("552 too much mail data",)),
    ("toomanyconn", ("552 too many recipients",)),
    ("syntaxerror", ("503 bad sequence of commands", "504 command parameter not implemented")),
)


def reason(ev: Evidence) -> str:
    """The reason docomo's reply in the evidence states, or ""."""
    if ev.status == "5.1.1":
        return "userunknown"
    if ev.status == "5.2.0":
        return "filtered"
    stated = first_stated(TEXTS, ev.text)
    if stated:
        return stated
    if ev.status in ("5.0.0", ""):
        if ev.command == "RCPT":
            return "userunknown"
        if ev.command == "DATA":
            return "rejected"
    return ""
