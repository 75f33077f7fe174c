"""Small shared extractors: addresses, SMTP reply codes, enhanced status codes, field lines."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache

MAX_DIAGNOSTIC = 1000

# An addr-spec as it appears in bounces; quoted local parts are rare and left out on purpose.
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,253})")
# Success codes have one-digit subject and detail (2.1.5, 2.6.0): "Mailman 2.0.12" is a version.
_STATUS = re.compile(
    r"(?<![\d.])(?:([45])\.(\d{1,3})\.(\d{1,3})|(2)\.([0-7])\.([0-7]))(?![\d]|\.\d)"
)
# A reply code is not a group of an IPv6 address ("2606:2800:220:6d"): neither preceded by a
# hex digit and a colon nor followed by a colon and a hex digit.
_REPLY = re.compile(
    r"(?<![\d.\-])(?<![0-9A-Fa-f]:)([245][0-5]\d)(?=[ \-,;:)\]>]|$)(?!:[0-9A-Fa-f])"
)
_REPLY_LEAD = re.compile(r"^\s*([245][0-5]\d)(?![\d.])")
_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9\-]{0,60})[ \t]*:[ \t]*(.*)$")
_DAEMON = re.compile(
    r"^(mailer-daemon|post_?master|mail-daemon|mailerdaemon|mdaemon|maildaemon|double-bounce|"
    r"bounce|bounces|nobody|noreply|no-reply|mailer|root|abuse)\b",
    re.IGNORECASE,
)


def find_status(text: str) -> str:
    """The first RFC 3463 enhanced status code in `text` ("5.1.1"), or ""."""
    match = _STATUS.search(text[:4096])
    if match is None:
        return ""
    if match.group(1):
        return f"{match.group(1)}.{int(match.group(2))}.{int(match.group(3))}"
    return f"2.{match.group(5)}.{match.group(6)}"


# A remote reply quoted in a report's own sentence: "550-'5.7.1 <a@b>... Access denied'".
_QUOTED_REPLY = re.compile(r"[245]\d\d[- ]['\"]([^'\"]{1,1000})['\"]")


def quoted_reply_status(text: str) -> str:
    """The enhanced status code inside a quoted remote reply in `text`, or ""."""
    quoted = _QUOTED_REPLY.search(text[:4096])
    return find_status(quoted.group(1)) if quoted is not None else ""


def find_replycode(text: str, status: str = "") -> str:
    """The first SMTP reply code in `text` ("550") of the same class as `status` when one is
    given (a "220-" greeting before "421 4.2.1" is not the answer); without a status, a
    failure code (5xx, then 4xx) before a success code, and only the success codes RFC 5321
    defines ("SIZE=222" is no reply)."""
    head = text[:4096]
    wanted = status[:1]
    match = _REPLY_LEAD.match(head)
    if (
        match is not None
        and (not wanted or match.group(1)[0] == wanted)
        and (match.group(1)[0] != "2" or match.group(1) in SUCCESS_REPLIES)
    ):
        return match.group(1)
    found = [m.group(1) for m in _REPLY.finditer(head)]
    for klass in (wanted,) if wanted else ("5", "4", "2"):
        for code in found:
            if code[0] == klass and (klass != "2" or code in SUCCESS_REPLIES):
                return code
    return ""


# The positive completion replies of RFC 5321 (and 235 of RFC 4954).
SUCCESS_REPLIES = frozenset({"211", "214", "220", "221", "235", "250", "251", "252", "253"})


def clean_address(value: str) -> str:
    """The lowercased addr-spec inside `value` ("rfc822; <A@B.example>" -> "a@b.example")."""
    match = ADDRESS.search(value[:1024])
    if match is None:
        return ""
    # Quotes around an address ("addressed to 'a@b',") and an X.400 "SMTP=" type prefix
    # ("dda:SMTP=a@b") are not part of it.
    address = match.group(0).strip(".").strip("'`").lower()
    if address.startswith("smtp="):
        address = address[5:]
    if "@" not in address or address.endswith("@") or "." not in address.split("@", 1)[1]:
        return ""
    if address.startswith("@"):
        return ""
    return address


def collapse(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    """Whitespace-collapsed text capped at `limit` characters."""
    return " ".join(text[: limit * 4].split())[:limit]


def parse_field_lines(text: str) -> list[tuple[str, str]]:
    """`Name: value` lines with continuation lines unfolded; other lines are skipped.

    A blank line yields ("", "") so callers can see group boundaries.
    """
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            out.append(("", ""))
            continue
        if line[0] in " \t":
            if out and out[-1][0]:
                name, value = out[-1]
                out[-1] = (name, value + " " + line.strip())
            continue
        match = _FIELD_LINE.match(line)
        if match is not None:
            out.append((match.group(1).lower(), match.group(2).strip()))
    return out


# Reports wrap lines anywhere ("in reply to RCPT\n    TO command"): whitespace between the
# words of a command, and around it, may be a line break and an indent.
_COMMAND_WORD = re.compile(
    r"(rcpt[\s_]+to|mail[\s_]+from|rcpt|mail|data|helo|ehlo|initial\s+connection|text)\b"
)
# Words that name a command only when "command" follows them ("after RCPT command"): "mail"
# alone is mostly the noun.
_BARE_COMMANDS = frozenset({"rcpt", "mail"})
_COMMAND_BEFORE = re.compile(
    r"(?:\bin\s+reply\s+to|\bafter|did\s+not\s+like\s+our|\bfor|\berror\s+(?:in|at|on)"
    r"|response\s+to|\bat)\s+(?:the\s+)?(?:end\s+of\s+|final\s+|our\s+)?$"
)
_COMMAND_AFTER = re.compile(r"\s+(?:command|response)")
# Phrases naming the phase instead of the command, each behind a cheap substring gate: qmail
# ("does not like recipient", "but my name was rejected", "failed on DATA command"), gateways
# that prefix the reply with "SMTP:<command> host", Gmail's "** Address not found **" heading
# and the session state its older reports end the reply with (6 after MAIL, 14 after RCPT,
# 15, 17 and 18 after DATA).
_GMAIL_STATE = re.compile(r"\(state\s+(\d{1,2})\)")
_GMAIL_STATE_COMMANDS = {"6": "MAIL", "14": "RCPT", "15": "DATA", "17": "DATA", "18": "DATA"}
_GATEWAY_COMMAND = re.compile(r"smtp:(rcpt|mail|data)\s+host")
_QMAIL_PHASES = (
    ("does not like recipient", "RCPT"),
    ("but sender was rejected", "MAIL"),
    ("but my name was rejected", "HELO"),
    ("but greeting failed", "CONN"),
    ("failed on data command", "DATA"),
    ("failed after i sent the message", "DATA"),
)


def _phase_phrase(lowered: str) -> str:
    if "address not found" in lowered and "** address not found **" in lowered:
        return "RCPT"
    if "(state" in lowered:
        state = _GMAIL_STATE.search(lowered)
        if state is not None and state.group(1) in _GMAIL_STATE_COMMANDS:
            return _GMAIL_STATE_COMMANDS[state.group(1)]
    if "smtp:" in lowered:
        gateway = _GATEWAY_COMMAND.search(lowered)
        if gateway is not None:
            return gateway.group(1).upper()
    if " but " in lowered or "does not like" in lowered or "failed " in lowered:
        for phrase, command in _QMAIL_PHASES:
            if phrase in lowered:
                return command
    return ""


_COMMAND_NAMES = {
    "rcpt to": "RCPT",
    "rcpt_to": "RCPT",
    "mail from": "MAIL",
    "mail_from": "MAIL",
    "data": "DATA",
    "text": "DATA",
    "helo": "HELO",
    "ehlo": "HELO",
    "initial connection": "CONN",
    "connection": "CONN",
}


def find_command(text: str) -> str:
    """The SMTP command a failure answered ("RCPT", "MAIL", "DATA", "HELO", "CONN") or ""."""
    return _find_command(text[:4096])


# Cached (on at most 4 KB): a report's text is consulted once per recipient it names.
@lru_cache(maxsize=64)
def _find_command(text: str) -> str:
    lowered = text.lower()
    phase = _phase_phrase(lowered)
    if phase:
        return phase
    for match in _COMMAND_WORD.finditer(lowered):
        start, end = match.span()
        if start and lowered[start - 1].isalnum():
            continue
        word = " ".join(match.group(1).replace("_", " ").split())
        before = lowered[max(0, start - 32) : start]
        if word in _BARE_COMMANDS:
            if _COMMAND_AFTER.match(lowered, end, end + 16):
                return "RCPT" if word == "rcpt" else "MAIL"
            continue
        if (
            _COMMAND_BEFORE.search(before)
            or _COMMAND_AFTER.match(lowered, end, end + 16)
            or (before.endswith("[") and lowered.startswith("]", end))
        ):
            return _COMMAND_NAMES.get(word, "")
    return _transcript_command(lowered)


# Sendmail-style session transcripts: ">>> DATA" then "<<< 550 ...".
# Reports often indent the transcript they quote.
_SENT = re.compile(r"^[ \t]*>>>[ \t]*(rcpt to|mail from|data|helo|ehlo)\b", re.MULTILINE)
_FAILED_REPLY = re.compile(r"^[ \t]*<<<[ \t]*[45]\d\d", re.MULTILINE)


def _transcript_command(lowered: str) -> str:
    failure = _FAILED_REPLY.search(lowered)
    if failure is None:
        return ""
    # A failed reply before any command was sent is the server's greeting refusing us; a
    # reply quoted without the session around it (no command, no "while talking to") says
    # nothing about when it came.
    if ">>>" not in lowered and "while talking to" not in lowered:
        return ""
    command = "connection"
    for sent in _SENT.finditer(lowered, 0, failure.start()):
        command = sent.group(1)
    return _COMMAND_NAMES.get(command, "")


def is_daemon(address: str) -> bool:
    """True for the local parts MTAs and list software send from (mailer-daemon, postmaster)."""
    return bool(address) and _DAEMON.match(address.split("@", 1)[0]) is not None


def iso_timestamp(value: str) -> str:
    """An RFC 5322 or ISO 8601 date as ISO 8601 ("2013-10-16T14:15:35+09:00"), or ""."""
    return _iso_timestamp(value.strip()[:100])


# Cached (on at most 100 characters): the recipients of one report share its dates.
@lru_cache(maxsize=256)
def _iso_timestamp(value: str) -> str:
    if not value:
        return ""
    if value[:4].isdigit():
        try:
            return datetime.fromisoformat(value).isoformat()
        except ValueError:
            return ""
    match = _RFC5322_DATE.search(value)
    if match is not None:
        # The common "Wed, 16 Oct 2013 14:15:35 +0900" shape, without the general parser.
        day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
        try:
            offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
            stamp = datetime(
                int(year),
                _MONTHS[month.lower()],
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                tzinfo=timezone(-offset if sign == "-" else offset),
            )
            return stamp.isoformat()
        except ValueError:
            return ""
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_RFC5322_DATE = re.compile(
    r"(\d{1,2})\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-])(\d{2})(\d{2})\b",
    re.IGNORECASE,
)


_MTA_DAEMON = re.compile(
    r"^(?:mailer-daemon|post_?master|mail-daemon|mailerdaemon|mdaemon|maildaemon|double-bounce)$",
    re.IGNORECASE,
)


def is_mta_daemon(address: str) -> bool:
    """True for the senders MTAs use for their reports (mailer-daemon, postmaster), or a
    report sent with no address at all ("From: mailer-daemon")."""
    local = address.split("@", 1)[0]
    return bool(local) and _MTA_DAEMON.match(local) is not None
