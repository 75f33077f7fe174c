"""Orange and La Poste (France): the refusal codes their replies end with ("LPN007_416",
"OFR_416", "OFR005_505"), and the texts of refusals without one."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = (".laposte.net", ".orange.fr", ".wanadoo.fr")

# Orange and La Poste end their replies with a code naming the refusal ("LPN007_416",
# "OFR_416", "OFR005_505"); its last three digits are documented per cause (e.g. postmastery's
# "Orange postmaster SMTP error codes") and are more precise than the generic text around them.
# Codes documented only as "service refused, please try later" name no cause: "undefined".
ORANGE_CODE_REASONS: Final[dict[str, str]] = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "toomanyconn",
    "105": "undefined",
    "107": "undefined",
    "108": "undefined",
    "109": "undefined",
    "201": "undefined",
    "305": "securityerror",
    "401": "authfailure",
    "402": "securityerror",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "userunknown",
    "417": "mailboxfull",
    "420": "suspend",
    "421": "rejected",
    "423": "undefined",
    "424": "undefined",
    "426": "suspend",
    "505": "systemerror",
    "506": "spamdetected",
    "510": "blocked",
    "513": "undefined",
    "514": "mesgtoobig",
    "517": "authfailure",
    "630": "policyviolation",
    "999": "blocked",
}
# One code per reply: the prefix names the system, the last three digits the cause.
_CODE = re.compile(r"\b(?:lpn|lpnaaa|ofr|ouk)(?:_|\d{3}[-_])(\d{3})\b")
TEXTS: Final[Texts] = (("authfailure", ("spf/dns de votre nom de domaine",)),)


def reason_from_code(text: str) -> str:
    """The reason an Orange or La Poste code in `text` names ("" for none or an unknown one;
    "undefined" for a code documented only as "try later")."""
    lowered = text[:4096].lower()
    if "lpn" not in lowered and "ofr" not in lowered and "ouk" not in lowered:
        return ""
    found = _CODE.search(lowered)
    return ORANGE_CODE_REASONS.get(found.group(1), "") if found is not None else ""


def reason(ev: Evidence) -> str:
    """The reason Orange's code or text in the evidence states, or ""."""
    by_code = reason_from_code(ev.text)
    if by_code:
        return by_code
    return first_stated(TEXTS, ev.text)
