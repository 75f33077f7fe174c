"""Orange and La Poste (France): the refusal codes their replies end with."""

from __future__ import annotations

from typing import Final

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
