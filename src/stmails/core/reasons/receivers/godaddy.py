"""GoDaddy (secureserver.net): the IBnnn codes its refusals carry, and its fixed texts."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = ("smtp.secureserver.net", "mailstore1.secureserver.net")

# GoDaddy's published bounce codes: the IB code names the cause.
CODES: Final[dict[str, str]] = {
    "IB007": "toomanyconn",
    "IB101": "speeding",
    "IB103": "badreputation",
    "IB104": "blocked",
    "IB105": "blocked",
    "IB106": "blocked",
    "IB108": "requireptr",
    "IB110": "blocked",
    "IB111": "blocked",
    "IB112": "blocked",
    "IB113": "blocked",
    "IB212": "spamdetected",
    "IB401": "securityerror",
    "IB501": "notcompliantrfc",
    "IB502": "notcompliantrfc",
    "IB504": "speeding",
    "IB506": "rejected",
    "IB508": "authfailure",
    "IB510": "speeding",
    "IB605": "toomanyconn",
    "IB607": "speeding",
    "IB705": "virusdetected",
}
# Texts of refusals without a code, in the order they are tried.
TEXTS: Final[Texts] = (
    ("blocked", ("rbl reject", "www.spamhaus.org/query/bl?ip=")),
    ("expired", ("has been in the queue too long", "delivery timeout")),
    ("mailboxfull", ("account storage limit",)),
    ("spamdetected", ("message rejected for spam or virus content",)),
    ("suspend", ("account disabled",)),
    ("systemerror", ("message is looping",)),
    ("userunknown", ("recipient not found", "account does not exist")),
)
_CODE = re.compile(r" (IB\d{3})\b")


def reason(ev: Evidence) -> str:
    """The reason GoDaddy's code or text in the evidence states, or ""."""
    found = _CODE.search(ev.text[:4096])
    if found is not None and found.group(1) in CODES:
        return CODES[found.group(1)]
    return first_stated(TEXTS, ev.text)
