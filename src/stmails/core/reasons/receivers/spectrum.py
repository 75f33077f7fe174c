"""Spectrum (Charter): the AUP# numbers its refusals end with, documented per range on its
"understanding email error codes" page."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence

HOSTS: Final[tuple[str, ...]] = ("charter.net",)

# (first, last, reason): the documented ranges of error numbers.
RANGES: Final[tuple[tuple[int, int, str], ...]] = (
    (1000, 1000, "blocked"),
    (1010, 1010, "rejected"),
    (1020, 1080, "rejected"),
    (1090, 1090, "systemerror"),
    (1100, 1150, "requireptr"),
    (1160, 1190, "policyviolation"),
    (1200, 1250, "blocked"),
    (1260, 1260, "networkerror"),
    (1300, 1340, "toomanyconn"),
    (1350, 1490, "speeding"),
    (1500, 1500, "rejected"),
    (1520, 1520, "rejected"),
    (1530, 1530, "mesgtoobig"),
    (1540, 1550, "speeding"),
    (1560, 1560, "policyviolation"),
    (1580, 1580, "speeding"),
)
_CODE = re.compile(r"AUP#[-A-Za-z]{0,10}(\d{4})")


def reason(ev: Evidence) -> str:
    """The reason Spectrum's AUP# number in the evidence states, or ""."""
    found = _CODE.search(ev.text[:4096])
    if found is None:
        return ""
    number = int(found.group(1))
    for first, last, name in RANGES:
        if first <= number <= last:
            return name
    return ""
