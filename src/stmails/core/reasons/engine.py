"""The rules that pick one reason for a failure from its evidence.

The evidence (`Evidence`) is what a report says about one recipient: the server's words, the
RFC 3463 status code, the SMTP reply code, the SMTP command the failure answered, the type of
the DSN's Diagnostic-Code, the DSN action, and a reason the report format or the reporting
MTA states in so many words. `decide()` weighs it in the order Sisimai's reason classes do,
an order learned from many MTAs' reports:

1. A stated reason stands, unless it is one of `REVISABLE_REASONS` (what MTAs say when they
   know little); a 2.x.x code is a delivery report.
2. For SMTP diagnostics, the checks of `SMTP_ORDER` run in turn. Each combines the reason the
   status code names (`STATUS_REASONS`), the command and the phrase tables: a full mailbox is
   a full mailbox whatever else the text says; a mailbox that does not exist is
   `userunknown` when the code names a bad mailbox or the refusal answered RCPT, and
   `filtered` when the same words come after the address was accepted; a refusal before any
   recipient was named cannot be about content.
3. Otherwise a stated revisable reason stands; else a specific status code decides; else
   the phrase tables in `TEXT_ORDER` (also for non-SMTP diagnostics); else the status class
   (X.6 content, X.7 security), an X-Unix diagnostic (a local program failed), a syntax reply
   code (501-507, 401-407), a delayed action, or a refusal of HELO.
4. Otherwise broad words (`LOOSE` tables) suggest a reason; an action "delayed" is an expiry;
   words that state a cause no table knows are `onhold`; no cause at all is `undefined`.
"""

from __future__ import annotations

from dataclasses import dataclass

from stmails.core.reasons.phrases import Said, scan
from stmails.core.reasons.status import reason_from_status
from stmails.core.reasons.vocabulary import REVISABLE_REASONS


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a report says about one failed recipient (empty strings for what it does not).

    `command` is RCPT, MAIL, DATA, HELO or CONN (connection); `diagnostic_type` is the DSN
    Diagnostic-Code type in lowercase ("smtp", "x-unix", "" when unknown); `stated` is a
    reason the report format or the reporting MTA's own wording states. `phase_known` is true
    when a missing command means the report did not name one (a report names the phase of a
    refusal at RCPT, so "unknown user" words without it came after acceptance); false when
    the caller could not know it (an ESP's diagnostic text alone).
    """

    text: str = ""
    status: str = ""
    replycode: str = ""
    command: str = ""
    diagnostic_type: str = ""
    action: str = ""
    stated: str = ""
    phase_known: bool = True


# Commands answered before a recipient was named, and before the message was sent.
_BEFORE_RCPT = frozenset({"CONN", "HELO", "EHLO", "MAIL"})
_BEFORE_DATA = _BEFORE_RCPT | {"RCPT"}
_GREETING = frozenset({"CONN", "HELO", "EHLO"})
# Reasons whose phrases mean an "unknown user" reply is about something else.
_NOT_THE_MAILBOX = ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept")


def _mailboxfull(ev: Evidence, said: Said, named: str) -> bool:
    return bool(ev.status) and (named == "mailboxfull" or said.states("mailboxfull"))


def _mesgtoobig(ev: Evidence, said: Said, named: str) -> bool:
    if named == "mesgtoobig":
        return True
    # A per-recipient size limit (5.2.3) is exceedlimit, whatever the words.
    if named == "exceedlimit" or ev.status == "5.2.3":
        return False
    return said.states("mesgtoobig")


def _exceedlimit(ev: Evidence, said: Said, named: str) -> bool:
    return bool(ev.status) and (named == "exceedlimit" or said.states("exceedlimit"))


def _suspend(ev: Evidence, said: Said, named: str) -> bool:
    if not ev.status:
        return False
    # 525 is RFC 4954's "user account disabled".
    return ev.stated == "suspend" or ev.replycode == "525" or said.states("suspend")


def _hasmoved(ev: Evidence, said: Said, named: str) -> bool:
    return said.states("hasmoved")


def _norelaying(ev: Evidence, said: Said, named: str) -> bool:
    if ev.stated in ("securityerror", "systemerror", "undefined"):
        return False
    return ev.command not in _GREETING and said.states("norelaying")


def _authfailure(ev: Evidence, said: Said, named: str) -> bool:
    return bool(ev.status) and (named == "authfailure" or said.states("authfailure"))


def _userunknown(ev: Evidence, said: Said, named: str) -> bool:
    if ev.stated == "userunknown":
        return True
    if named == "suspend":
        return False
    if named == "userunknown":
        # A bad-mailbox code, unless the words say the refusal was about something else.
        return not any(said.states(other) for other in _NOT_THE_MAILBOX)
    at_rcpt = ev.command == "RCPT" or (not ev.phase_known and named != "filtered")
    return at_rcpt and said.states("userunknown")


def _filtered(ev: Evidence, said: Said, named: str) -> bool:
    if named == "suspend":
        return False
    if named == "filtered":
        return said.states("userunknown") or said.states("filtered")
    if ev.command in _BEFORE_DATA:
        return False
    # "No such user" said after the address was accepted is the recipient's filter.
    return said.states("filtered") or said.states("userunknown")


def _requireptr(ev: Evidence, said: Said, named: str) -> bool:
    return named == "requireptr" or said.states("requireptr")


def _notcompliantrfc(ev: Evidence, said: Said, named: str) -> bool:
    return said.states("notcompliantrfc")


def _badreputation(ev: Evidence, said: Said, named: str) -> bool:
    return said.states("badreputation")


def _rejected(ev: Evidence, said: Said, named: str) -> bool:
    if named == "rejected":
        return True
    if ev.command == "MAIL":
        return said.states("rejected")
    if ev.command == "DATA":
        return named != "userunknown" and said.states("rejected")
    if (named or "undefined") in ("onhold", "undefined", "securityerror", "systemerror"):
        return said.states("rejected")
    return False


def _hostunknown(ev: Evidence, said: Said, named: str) -> bool:
    if ev.stated == "hostunknown":
        return True
    if named == "hostunknown":
        # A resolver failure ("try again") under a bad-domain code is no dead domain.
        return not said.states("networkerror")
    return said.states("hostunknown")


def _spamdetected(ev: Evidence, said: Said, named: str) -> bool:
    if not ev.status:
        return False
    if named == "spamdetected":
        return True
    # Content is judged after DATA: an earlier refusal is about the sender.
    return ev.command not in _BEFORE_DATA and said.states("spamdetected")


def _speeding(ev: Evidence, said: Said, named: str) -> bool:
    return bool(ev.status) and said.states("speeding")


def _toomanyconn(ev: Evidence, said: Said, named: str) -> bool:
    return named == "toomanyconn" or said.states("toomanyconn")


def _blocked(ev: Evidence, said: Said, named: str) -> bool:
    return named == "blocked" or said.states("blocked")


# The checks for an SMTP diagnostic, in the order they are tried; the first that holds decides.
SMTP_ORDER = (
    ("mailboxfull", _mailboxfull),
    ("mesgtoobig", _mesgtoobig),
    ("exceedlimit", _exceedlimit),
    ("suspend", _suspend),
    ("hasmoved", _hasmoved),
    ("norelaying", _norelaying),
    ("authfailure", _authfailure),
    ("userunknown", _userunknown),
    ("filtered", _filtered),
    ("requireptr", _requireptr),
    ("notcompliantrfc", _notcompliantrfc),
    ("badreputation", _badreputation),
    ("rejected", _rejected),
    ("hostunknown", _hostunknown),
    ("spamdetected", _spamdetected),
    ("speeding", _speeding),
    ("toomanyconn", _toomanyconn),
    ("blocked", _blocked),
)

# The phrase tables consulted, in this order, when the checks above found nothing.
TEXT_ORDER = (
    "mailboxfull",
    "authfailure",
    "badreputation",
    "speeding",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "systemerror",
    "networkerror",
    "suspend",
    "contenterror",
    "systemfull",
    "notaccept",
    "expired",
    "securityerror",
    "mailererror",
)

# Reply codes of syntax and sequence errors (RFC 5321 500-504, and their 4xx mirrors).
_SYNTAX_REPLIES = frozenset({str(code) for code in (*range(401, 408), *range(501, 508))})


def _smtp_checks(ev: Evidence, said: Said, named: str) -> str:
    for reason, holds in SMTP_ORDER:
        if holds(ev, said, named):
            return reason
    return ""


def _second_look(ev: Evidence, said: Said, named: str) -> str:
    if ev.stated:
        return ev.stated
    smtp = ev.diagnostic_type in ("", "smtp")
    if named and named not in REVISABLE_REASONS and smtp:
        return named
    for reason in TEXT_ORDER:
        if said.states(reason):
            return reason
    if named:
        # A code that names a reason the words could have revised, and did not.
        return named
    if ev.status[:3] in ("5.6", "4.6"):
        return "contenterror"
    if ev.status[:3] in ("5.7", "4.7"):
        return "securityerror"
    if ev.diagnostic_type.startswith("x-unix"):
        return "mailererror"
    if ev.replycode in _SYNTAX_REPLIES:
        return "syntaxerror"
    if ev.action in ("delayed", "expired"):
        return "expired"
    if ev.command in _GREETING:
        # Refused before the sender was even named: the sending host itself.
        return "blocked"
    return ""


def weigh(ev: Evidence, said: Said) -> str:
    """The reason the evidence states through the ordered checks, or "" when none does (the
    caller then falls back on context, broad words and the onhold/undefined split)."""
    if ev.stated and ev.stated not in REVISABLE_REASONS:
        return ev.stated
    if ev.status.startswith("2."):
        return "delivered"
    named = reason_from_status(ev.status)
    reason = ""
    if ev.diagnostic_type in ("", "smtp"):
        reason = _smtp_checks(ev, said, named)
    if not reason:
        reason = _second_look(ev, said, named)
    return "" if reason == "undefined" else reason


def settle(ev: Evidence, said: Said, reason: str) -> str:
    """The last resort for evidence no rule decided: broad words, an expiry for a delayed
    action, a refused sender for a refusal of MAIL FROM, `onhold` when there are words,
    `undefined` when there are none. A domain that does not resolve "for now" (a 4.x.x code)
    is a resolver problem (`networkerror`), not a dead domain."""
    if reason == "hostunknown" and (ev.status or ev.replycode).startswith("4"):
        return "networkerror"
    if reason:
        return reason
    loose = said.first_loose()
    if loose:
        return loose
    if ev.action == "delayed":
        return "expired"
    if said.states("vacation"):
        return "vacation"
    if ev.command == "MAIL":
        # Whatever the words, a refusal of MAIL FROM is a refusal of the sender.
        return "rejected"
    return "onhold" if ev.text.strip() else "undefined"


def decide(ev: Evidence) -> str:
    """One reason of the vocabulary for the evidence (see the module docstring)."""
    said = scan(ev.text)
    return settle(ev, said, weigh(ev, said))


def reason_from_text(text: str) -> str:
    """The reason the phrase tables alone state for `text` (the SMTP checks without codes or
    command, then the text order), or ""."""
    if not text:
        return ""
    said = scan(text)
    for reason, _ in SMTP_ORDER:
        if said.states(reason):
            return reason
    for reason in TEXT_ORDER:
        if said.states(reason):
            return reason
    return ""


def match_reason(
    text: str,
    status: str = "",
    replycode: str = "",
    *,
    command: str = "",
    diagnostic_type: str = "",
    action: str = "",
) -> str:
    """Pick one reason of `REASONS` from a diagnostic text and optional codes.

    `status` is an RFC 3463 code ("5.1.1"), `replycode` an SMTP reply code ("550"); both may be
    empty, like the SMTP command and the DSN fields. 2.x.x codes give "delivered"; otherwise
    the rules of `decide` apply: "onhold" for a cause in words no table knows (or a temporary
    failure without one), "undefined" when nothing at all is known. Without a command the
    phase is unknown: "no such user" words are `userunknown`, not a filter's after acceptance.
    """
    if not status and replycode.startswith("2"):
        return "delivered"
    ev = Evidence(
        text=text,
        status=status,
        replycode=replycode,
        command=command,
        diagnostic_type=diagnostic_type,
        action=action,
        phase_known=bool(command),
    )
    reason = decide(ev)
    if reason == "undefined" and (status.startswith("4") or replycode.startswith("4")):
        return "onhold"
    return reason


__all__ = [
    "SMTP_ORDER",
    "TEXT_ORDER",
    "Evidence",
    "decide",
    "match_reason",
    "reason_from_text",
    "settle",
    "weigh",
]
