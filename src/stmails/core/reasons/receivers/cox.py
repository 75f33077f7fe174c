"""Cox Communications: the AUP# codes its refusals end with, documented on its email
error codes page, and the texts of refusals without one."""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.engine import Evidence
from stmails.core.reasons.receivers._texts import Texts, first_stated

HOSTS: Final[tuple[str, ...]] = ("cox.net",)

# Cox ends its refusals with "AUP#<code>", documented on its email-error-codes page; the IPBL
# family names the block lists the sending IP is on, URLBL those a URL in the body is on.
COX_CODE_REASONS: Final[dict[str, str]] = {
    "CXBL": "blocked",
    "CDRBL": "blocked",
    "CXDNS": "requireptr",
    "CXSNDR": "authfailure",
    "CXSMTP": "rejected",
    "CXCNCT": "toomanyconn",
    "CXMXRT": "toomanyconn",
    "CXTHRT": "securityerror",
    "CXMJ": "securityerror",
}
TEXTS: Final[Texts] = (
    ("blocked", ("cox too many bad commands from", "too many invalid recipients")),
    ("requireptr", ("dns check failure - try again later", "rejected - no rdns")),
    ("policyviolation", ("esmtp no data before greeting", "attachment extension is forbidden")),
    ("rejected", ("sender rejected",)),
    ("systemerror", ("esmtp server temporarily not available",)),
    (
        "toomanyconn",
        (
            "too many sessions from",
            "requested action aborted: try again later",
            "message threshold exceeded",
        ),
    ),
    ("userunknown", ("recipient rejected",)),
)
_CODE = re.compile(r"aup#([0-9a-z]{1,20})")


def reason_from_code(text: str) -> str:
    """The reason a Cox AUP# code in `text` names, or "" (the IPBL family names block lists the
    sending IP is on, URLBL those a URL of the message is on)."""
    lowered = text[:4096].lower()
    if "aup#" not in lowered:
        return ""
    found = _CODE.search(lowered)
    if found is None:
        return ""
    code = found.group(1).upper()
    if code.startswith("IPBL"):
        return "blocked"
    if code.startswith("URLBL"):
        return "spamdetected"
    return COX_CODE_REASONS.get(code, "")


def reason(ev: Evidence) -> str:
    """The reason Cox's code or text in the evidence states, or ""."""
    by_code = reason_from_code(ev.text)
    if by_code:
        return by_code
    return first_stated(TEXTS, ev.text)
