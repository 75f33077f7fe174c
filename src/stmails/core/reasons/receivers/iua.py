"""i.ua (Ukraine): its refusals link an error page whose number names the cause
(https://mail.i.ua/err/N/)."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence

HOSTS: Final[tuple[str, ...]] = (".email.ua",)

CODES: Final[dict[str, str]] = {
    "1": "norelaying",
    "2": "userunknown",
    "3": "suspend",
    "4": "mailboxfull",
    "5": "toomanyconn",
    "6": "norelaying",
    "7": "blocked",
    "8": "rejected",
    "9": "blocked",
    "10": "filtered",
}
_CODE = re.compile(r"\.i\.ua/err/(\d{1,2})\b")


def reason(ev: Evidence) -> str:
    """The reason i.ua's error number in the evidence states, or ""."""
    found = _CODE.search(ev.text[:4096].lower())
    return CODES.get(found.group(1), "") if found is not None else ""
