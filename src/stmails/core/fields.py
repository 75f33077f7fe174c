"""Small shared extractors: addresses, SMTP reply codes, enhanced status codes, field lines."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache

MAX_DIAGNOSTIC = 1000

# An addr-spec as it appears in bounces; quoted local parts are rare and left out on purpose.
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,253})")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_REPLY = re.compile(r"(?<![\d.\-])([245][0-5]\d)(?=[ \-,;:)\]>]|$)")
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
    return f"{match.group(1)}.{int(match.group(2))}.{int(match.group(3))}"


def find_replycode(text: str, status: str = "") -> str:
    """The first SMTP reply code in `text` ("550") of the same class as `status` when one is
    given (a "220-" greeting before "421 4.2.1" is not the answer), or ""."""
    head = text[:4096]
    wanted = status[:1]
    match = _REPLY_LEAD.match(head)
    if match is not None and (not wanted or match.group(1)[0] == wanted):
        return match.group(1)
    for match in _REPLY.finditer(head):
        if not wanted or match.group(1)[0] == wanted:
            return match.group(1)
    return ""


def clean_address(value: str) -> str:
    """The lowercased addr-spec inside `value` ("rfc822; <A@B.example>" -> "a@b.example")."""
    match = ADDRESS.search(value[:1024])
    if match is None:
        return ""
    address = match.group(0).strip(".").lower()
    if "@" not in address or address.endswith("@") or "." not in address.split("@", 1)[1]:
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


_COMMAND_WORD = re.compile(r"(rcpt[ _]to|mail[ _]from|data|helo|ehlo|initial connection|text)\b")
_COMMAND_BEFORE = re.compile(
    r"(?:\bin reply to|\bafter|did not like our|\bfor|\berror (?:in|at|on)|response to|\bat)"
    r"[ \t]+(?:the[ \t]+)?(?:end of[ \t]+|final[ \t]+|our[ \t]+)?$"
)
# qmail names the phase in its own words instead of the command; some gateways prefix the
# server's reply with "SMTP:<command> host ..."; Gmail heads a recipient refused at RCPT with
# "** Address not found **".
_PHASE_PHRASES = (
    ("** address not found **", "RCPT"),
    ("does not like recipient", "RCPT"),
    ("smtp:rcpt host", "RCPT"),
    ("smtp:mail host", "MAIL"),
    ("smtp:data host", "DATA"),
    ("failed on data command", "DATA"),
    ("failed after i sent the message", "DATA"),
)
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
    # Reports wrap lines anywhere ("in reply to RCPT\n    TO command"): phrases are read on
    # whitespace-collapsed text; transcripts below need the line structure.
    collapsed = " ".join(lowered.split())
    for phrase, command in _PHASE_PHRASES:
        if phrase in collapsed:
            return command
    for match in _COMMAND_WORD.finditer(collapsed):
        start, end = match.span()
        if start and collapsed[start - 1].isalnum():
            continue
        word = match.group(1).replace("_", " ")
        before = collapsed[max(0, start - 24) : start]
        after = collapsed[end : end + 10]
        if (
            _COMMAND_BEFORE.search(before)
            or after.startswith((" command", " response"))
            or (before.endswith("[") and after.startswith("]"))
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
    command = ""
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
