"""au by KDDI (ezweb.ne.jp, au.com): an unknown user is answered "550 <address>: User unknown"
at RCPT, while the recipient's domain filter answers "550 : User unknown" with the address
left out."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence

HOSTS: Final[tuple[str, ...]] = (".ezweb.ne.jp", "msmx.au.com", "au.com")


def reason(ev: Evidence) -> str:
    """The reason au's reply in the evidence states, or ""."""
    text = ev.text.lower()
    if "550 : user unknown" in text or ": : user unknown" in text:
        return "filtered"
    if ">: user unknown" in text:
        return "userunknown"
    return ""
