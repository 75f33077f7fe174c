"""Yahoo (Yahoo Mail, AOL: yahoodns.net): the bracketed codes its refusals carry, and the
texts of its refusals."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = (".yahoodns.net",)

# Yahoo puts a bracketed code in its refusals and links its error-codes page, where each code's
# meaning is documented (TSS04: deferred for unexpected volume or user complaints; TSS09/TSS11:
# all mail from the IP permanently deferred; BL21/BL23: the IP is on a Spamhaus list; PH01:
# not accepted for policy reasons).
YAHOO_CODE_REASONS: Final[dict[str, str]] = {
    "TSS04": "badreputation",
    "TSS09": "rejected",
    "TSS11": "rejected",
    "BL21": "blocked",
    "BL23": "blocked",
    "PH01": "policyviolation",
}
TEXTS: Final[Texts] = (
    ("authfailure", ("yahoo requires all senders to authenticate with either spf or dkim",)),
    (
        "blocked",
        (
            " because the ip is in spamhaus's list;",
            "not accepted from ip addresses on spamhaus xbl",
        ),
    ),
    ("norelaying", ("relaying denied for ",)),
    ("notcompliantrfc", ("headers are not rfc compliant",)),
    ("policyviolation", ("not accepted for policy reasons",)),
    (
        "rejected",
        (
            "temporarily deferred due to unexpected volume or user complaints",
            "due to unresolvable rfc.5321 domain",
            " will be permanently deferred",
        ),
    ),
    ("speeding", ("user is receiving mail too quickly",)),
    ("suspend", (" is no longer valid.", "this mailbox is disabled")),
    ("syntaxerror", ("syntax error in parameters or arguments",)),
    ("toomanyconn", ("max message per connection reached",)),
    ("userunknown", ("dd this user doesn't have a ", "mailbox not found")),
)
_CODE = re.compile(r"\[((?:tss|bl|ph)\d{2})\]")


def reason_from_code(text: str) -> str:
    """The reason a Yahoo bracketed code in `text` names, or "" (the code counts only in a
    reply that names Yahoo, whose error-codes page it refers to)."""
    lowered = text[:4096].lower()
    if "yahoo" not in lowered:
        return ""
    found = _CODE.search(lowered)
    return YAHOO_CODE_REASONS.get(found.group(1).upper(), "") if found is not None else ""


def reason(ev: Evidence) -> str:
    """The reason Yahoo's text or code in the evidence states, or "". Its own servers' texts
    come first: a deferral for complaints from a Yahoo server refuses the sender."""
    return first_stated(TEXTS, ev.text) or reason_from_code(ev.text)
