"""Small shared extractors: addresses, SMTP reply codes, enhanced status codes, field lines."""

from __future__ import annotations

import re

MAX_DIAGNOSTIC = 1000

# An addr-spec as it appears in bounces; quoted local parts are rare and left out on purpose.
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,253})")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_REPLY = re.compile(r"(?<![\d.\-])([245][0-5]\d)(?:[ \-]|$)")
_REPLY_LEAD = re.compile(r"^\s*([245][0-5]\d)(?![\d.])")
_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9\-]{0,60})[ \t]*:[ \t]*(.*)$")
_SPACE = re.compile(r"\s+")
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


def find_replycode(text: str, lead_only: bool = False) -> str:
    """The first SMTP reply code in `text` ("550"), or ""; `lead_only` requires it first."""
    match = _REPLY_LEAD.match(text[:4096])
    if match is not None:
        return match.group(1)
    if lead_only:
        return ""
    match = _REPLY.search(text[:4096])
    return match.group(1) if match else ""


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
    return _SPACE.sub(" ", text[: limit * 4]).strip()[:limit]


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


_COMMAND = re.compile(
    r"(?:in reply to|after|did not like our|for|error (?:in|at|on)|response to|at)[ \t]+"
    r"(?:the[ \t]+)?(?:end of[ \t]+|final[ \t]+|our[ \t]+)?"
    r"(rcpt[ _]to|mail[ _]from|data|helo|ehlo|initial connection|connection|text)\b"
    r"|\[(rcpt_to|mail_from|data)\]|\b(rcpt to|mail from|data|helo|ehlo)[ \t]+(?:command|response)",
    re.IGNORECASE,
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
    match = _COMMAND.search(text[:4096])
    if match is None:
        return ""
    word = next(group for group in match.groups() if group)
    return _COMMAND_NAMES.get(word.lower().replace("_", " ") if "_" in word else word.lower(), "")


def is_daemon(address: str) -> bool:
    """True for the local parts MTAs and list software send from (mailer-daemon, postmaster)."""
    return bool(address) and _DAEMON.match(address.split("@", 1)[0]) is not None
