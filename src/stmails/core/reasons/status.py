"""Enhanced status codes (RFC 3463 and the IANA registry): the reason each names, and the code
stmails states for a reason when a report carries none.

Two directions, two conventions:

- Code to reason (`STATUS_REASONS`) follows how servers use the codes in practice, as Sisimai's
  status table records it: X.2.1 ("mailbox disabled") and X.2.0 are mostly sent by recipient
  filters (`filtered`), X.7.1 ("delivery not authorized") by every kind of security or policy
  refusal (`securityerror`, which the text then refines). Codes without a specific meaning
  (X.0.0, X.1.0's siblings that servers use loosely) are absent: the text decides.
- Reason to code (`infer_status`) states the registered code whose meaning is the reason, in
  the failure's class, so that a record without a code still carries a standard one
  (`status_inferred` says it was inferred). stmails does not use Sisimai's private X.0.9NN
  codes: they are not in the registry, and consumers of the API expect RFC 3463 codes.
"""

from __future__ import annotations

from typing import Final

# The reason each enhanced status code names. Classes 4 and 5 differ where servers use them
# differently (4.4.4 is a routing failure that may pass; 5.4.4 is a domain that cannot be
# routed at all).
STATUS_REASONS: Final[dict[str, str]] = {
    "2.0.0": "delivered",
    "2.1.5": "delivered",
    "4.1.6": "hasmoved",
    "4.1.7": "rejected",
    "4.1.8": "rejected",
    "4.1.9": "systemerror",
    "4.2.1": "suspend",
    "4.2.2": "mailboxfull",
    "4.2.3": "exceedlimit",
    "4.2.4": "filtered",
    "4.3.1": "systemfull",
    "4.3.2": "notaccept",
    "4.3.3": "systemerror",
    "4.3.4": "mesgtoobig",
    "4.3.5": "systemerror",
    "4.4.1": "expired",
    "4.4.2": "networkerror",
    "4.4.3": "systemerror",
    "4.4.4": "networkerror",
    "4.4.5": "systemfull",
    "4.4.6": "networkerror",
    "4.4.7": "expired",
    "4.4.8": "networkerror",
    "4.5.3": "systemerror",
    "4.5.5": "systemerror",
    "4.6.0": "contenterror",
    "4.6.2": "contenterror",
    "4.6.5": "contenterror",
    "4.7.1": "blocked",
    "4.7.2": "blocked",
    "4.7.5": "securityerror",
    "4.7.6": "securityerror",
    "4.7.7": "securityerror",
    "4.7.12": "securityerror",
    "4.7.15": "securityerror",
    "4.7.16": "mesgtoobig",
    "4.7.24": "authfailure",
    "4.7.25": "requireptr",
    "5.1.0": "userunknown",
    "5.1.1": "userunknown",
    "5.1.2": "hostunknown",
    "5.1.3": "userunknown",
    "5.1.4": "filtered",
    "5.1.6": "hasmoved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.9": "systemerror",
    "5.1.10": "notaccept",
    "5.2.0": "filtered",
    "5.2.1": "filtered",
    "5.2.2": "mailboxfull",
    "5.2.3": "exceedlimit",
    "5.2.4": "filtered",
    "5.3.0": "systemerror",
    "5.3.1": "systemfull",
    "5.3.2": "notaccept",
    "5.3.3": "systemerror",
    "5.3.4": "mesgtoobig",
    "5.3.5": "systemerror",
    "5.4.0": "networkerror",
    "5.4.3": "systemerror",
    "5.4.4": "hostunknown",
    "5.4.6": "networkerror",
    "5.4.7": "expired",
    "5.4.8": "networkerror",
    "5.5.2": "syntaxerror",
    "5.5.3": "toomanyconn",
    "5.5.4": "systemerror",
    "5.5.5": "systemerror",
    "5.5.6": "syntaxerror",
    "5.6.0": "contenterror",
    "5.6.1": "contenterror",
    "5.6.2": "contenterror",
    "5.6.3": "contenterror",
    "5.6.5": "contenterror",
    "5.6.6": "contenterror",
    "5.6.7": "contenterror",
    "5.6.8": "contenterror",
    "5.6.9": "contenterror",
    "5.7.0": "securityerror",
    "5.7.1": "securityerror",
    "5.7.2": "securityerror",
    "5.7.3": "securityerror",
    "5.7.4": "securityerror",
    "5.7.5": "securityerror",
    "5.7.6": "securityerror",
    "5.7.7": "securityerror",
    "5.7.8": "securityerror",
    "5.7.9": "securityerror",
    "5.7.10": "securityerror",
    "5.7.11": "securityerror",
    "5.7.13": "suspend",
    "5.7.14": "securityerror",
    "5.7.15": "securityerror",
    "5.7.16": "mesgtoobig",
    "5.7.17": "hasmoved",
    "5.7.18": "hasmoved",
    "5.7.19": "securityerror",
    "5.7.20": "authfailure",
    "5.7.21": "authfailure",
    "5.7.22": "authfailure",
    "5.7.23": "authfailure",
    "5.7.24": "authfailure",
    "5.7.25": "requireptr",
    "5.7.26": "authfailure",
    "5.7.27": "notaccept",
    "5.7.28": "spamdetected",
    "5.7.29": "authfailure",
    "5.7.30": "securityerror",
}


def reason_from_status(status: str) -> str:
    """The reason an enhanced status code names on its own, or "" when it is not specific."""
    return STATUS_REASONS.get(status, "")


# The registered subject.detail that states each reason, used when a report carries no
# enhanced code; the class digit is the failure's (2, 4 or 5). Reasons no registered code
# states (onhold, undefined) get X.0.0; complaints and auto-replies have no status.
REASON_STATUS_DETAIL: Final[dict[str, str]] = {
    "delivered": "0.0",
    "userunknown": "1.1",
    "hostunknown": "1.2",
    "hasmoved": "1.6",
    "rejected": "1.8",
    "notaccept": "3.2",
    "suspend": "2.1",
    "mailboxfull": "2.2",
    "exceedlimit": "2.3",
    "filtered": "2.0",
    "systemerror": "3.0",
    "mailererror": "3.0",
    "systemfull": "3.1",
    "mesgtoobig": "3.4",
    "networkerror": "4.0",
    "toomanyconn": "4.5",
    "expired": "4.7",
    "syntaxerror": "5.2",
    "contenterror": "6.0",
    "notcompliantrfc": "6.0",
    "securityerror": "7.0",
    "blocked": "7.1",
    "badreputation": "7.1",
    "spamdetected": "7.1",
    "virusdetected": "7.1",
    "policyviolation": "7.1",
    "norelaying": "7.1",
    "speeding": "7.1",
    "authfailure": "7.26",
    "requireptr": "7.25",
    "onhold": "0.0",
    "undefined": "0.0",
}


def infer_status(reason: str, replycode: str = "", action: str = "") -> str:
    """The standard enhanced code for `reason` when a report carries none, or "".

    The class comes from the reply code (2xx, 4xx, 5xx), else from the DSN action (delivered
    is 2, delayed is 4), else 5: a failure report without a code is a permanent failure.
    """
    detail = REASON_STATUS_DETAIL.get(reason)
    if detail is None:
        return ""
    if reason == "delivered" or action in ("delivered", "relayed", "expanded"):
        klass = "2"
    elif replycode[:1] in ("2", "4", "5"):
        klass = replycode[0]
    elif action == "delayed":
        klass = "4"
    else:
        klass = "5"
    if klass == "2":
        return "2.0.0"
    return f"{klass}.{detail}"
