"""The generic reader for human-readable bounces of any MTA: recipients and diagnostics from text.

Most non-standard bounces (qmail, Exim, Gmail, Yahoo, Exchange, ...) share one shape: a few
lines of boilerplate, then each failed address on its own line (bare, in angle brackets, or
followed by a colon), then the remote server's words with an SMTP reply code and often an
enhanced status code. This module reads that shape without knowing the MTA.
"""

from __future__ import annotations

import re

from stmails.core.context import Context
from stmails.core.fields import ADDRESS, clean_address, collapse, find_replycode, find_status
from stmails.core.finding import Finding
from stmails.core.standard import is_daemon

MAX_RECIPIENTS = 100
MAX_LINES = 2000

_BOUNCE_SUBJECT = re.compile(
    r"(?:undeliver|delivery (?:status|fail|failure|notification|problem|has failed|report)|"
    r"failure notice|returned mail|mail delivery|could not be delivered|not delivered|"
    r"delivery failed|nondeliverable|non[- ]?delivery|returned to sender|rejected|"
    r"bounce|mail failure|failed delivery|unable to deliver|error sending|warning: |"
    r"message not delivered|delayed mail|delivery delayed|notice of delivery|"
    r"no se pudo entregar|non remis|unzustellbar|nicht zustellbar|zurückgeschickt|"
    r"不能|エラー|配信|未送達|退信|系统退信|не доставлено|недоставлен|"
    r"mensaje no entregado|email error|mail error|permanent error|temporary error|"
    r"failed mail|returned email|undeliverable)",
    re.IGNORECASE,
)
# A line whose content is essentially one address: "  a@b", "<a@b>:", "a@b<mailto:a@b>".
_ADDRESS_LINE = re.compile(
    r"^[ \t>*\-]*(?:(?:to|recipient|rcpt|address|original-recipient|final-recipient|"
    r"failed recipient|destinataire|empfänger|recipient address)[ \t]*:?[ \t]*)?"
    r"(?:rfc822;[ \t]*)?<?(?:mailto:)?([^\s<>@,;:\"()]{1,64}@[A-Za-z0-9.\-]{1,253})>?"
    r"(?:[ \t]*<mailto:[^>\s]{1,300}>)?[ \t]*[:,.]?[ \t]*(?:\([^()\n]{0,200}\))?[ \t]*$",
    re.IGNORECASE,
)
# An address in angle brackets or after an obvious label, anywhere on a line.
_INLINE_RECIPIENT = re.compile(
    r"(?:(?:to|for|recipient|address|rcpt to:|delivering to|deliver to|"
    r"message to|mail to|destinataire|adresse)[ \t]*:?[ \t]*<?|<)"
    r"([^\s<>@,;:\"()]{1,64}@[A-Za-z0-9.\-]{1,253})",
    re.IGNORECASE,
)
_SMTP_LINE = re.compile(r"(?:^|[\s:(\[])([245][0-5]\d)(?:[ \-]|$)|[245]\.\d{1,3}\.\d{1,3}")
_MAIL_FROM = re.compile(r"mail from:?\s*<([^<>\s]{1,300})>", re.IGNORECASE)
_TEMPORARY = re.compile(
    r"(?:temporary|temporarily|will (?:continue|keep) (?:to )?try|will retry|delayed|"
    r"has not yet been delivered|not yet been delivered|retrying)",
    re.IGNORECASE,
)


def looks_like_bounce(ctx: Context) -> bool:
    """True when the envelope says the message is a delivery failure report."""
    if is_daemon(ctx.sender) or ctx.root.get("x-failed-recipients"):
        return True
    if "multipart/report" in ctx.part_types:
        return True
    return _BOUNCE_SUBJECT.search(ctx.subject) is not None


def _excluded(ctx: Context, text: str) -> set[str]:
    excluded = {ctx.to, ctx.sender, ctx.original.from_}
    for match in _MAIL_FROM.finditer(text[:20000]):
        excluded.add(clean_address(match.group(1)))
    excluded.discard("")
    return excluded


def find_recipients(ctx: Context, text: str) -> list[tuple[str, int]]:
    """Failed recipients and the line index where each is first named, in text order."""
    lines = text.split("\n")[:MAX_LINES]
    excluded = _excluded(ctx, text)
    own_line: list[tuple[str, int]] = []
    inline: list[tuple[str, int]] = []
    seen_own: set[str] = set()
    seen_inline: set[str] = set()
    for index, line in enumerate(lines):
        if "@" not in line:
            continue
        match = _ADDRESS_LINE.match(line)
        if match is not None:
            address = clean_address(match.group(1))
            if address and address not in excluded and not is_daemon(address):
                if address not in seen_own:
                    seen_own.add(address)
                    own_line.append((address, index))
                continue
        for found in _INLINE_RECIPIENT.finditer(line[:2000]):
            address = clean_address(found.group(1))
            usable = address and address not in excluded and not is_daemon(address)
            if usable and address not in seen_inline:
                seen_inline.add(address)
                inline.append((address, index))
        if len(own_line) >= MAX_RECIPIENTS:
            break
    if own_line:
        return own_line[:MAX_RECIPIENTS]
    return inline[:MAX_RECIPIENTS]


def _diagnostic_of(segment: list[str]) -> str:
    """The server's words in a recipient's segment: from the first line carrying an SMTP
    code to the end of that paragraph; the whole segment when no code is present."""
    for index, line in enumerate(segment):
        if _SMTP_LINE.search(line):
            block = [line.strip()]
            for follow in segment[index + 1 : index + 6]:
                if not follow.strip():
                    break
                block.append(follow.strip())
            return collapse(" ".join(block))
    return collapse(" ".join(line.strip() for line in segment if line.strip()))


def detect_generic(ctx: Context) -> list[Finding] | None:
    """Recipients and diagnostics read from the human-readable text of a bounce."""
    if not looks_like_bounce(ctx):
        return None
    text = ctx.bounce_text
    lines = text.split("\n")[:MAX_LINES]
    recipients = find_recipients(ctx, text)
    if not recipients:
        failed = clean_address(ctx.root.get("x-failed-recipients"))
        if failed:
            recipients = [(failed, 0)]
        elif ctx.original.to and (
            "message/rfc822" in ctx.part_types or "text/rfc822-headers" in ctx.part_types
        ):
            recipients = [(ctx.original.to, 0)]
    if not recipients:
        return None
    temporary = _TEMPORARY.search(text[:8000]) is not None
    findings: list[Finding] = []
    for position, (address, start) in enumerate(recipients):
        end = recipients[position + 1][1] if position + 1 < len(recipients) else len(lines)
        if end <= start:
            end = min(len(lines), start + 15)
        segment = lines[start : min(end, start + 40)]
        diagnostic = _diagnostic_of(segment)
        if not _SMTP_LINE.search(diagnostic):
            whole = _diagnostic_of(lines)
            if _SMTP_LINE.search(whole):
                diagnostic = whole
        status = find_status(diagnostic)
        replycode = find_replycode(diagnostic)
        if replycode and status and replycode[0] != status[0]:
            replycode = ""
        code = status or replycode
        if code:
            action = "delayed" if code.startswith("4") else "failed"
        else:
            action = "delayed" if temporary else "failed"
        findings.append(
            Finding(
                recipient=address,
                diagnostic=diagnostic,
                status=status,
                replycode=replycode,
                action=action,
                context_text=collapse(text, 4000),
            )
        )
    return findings


__all__ = ["ADDRESS", "detect_generic", "find_recipients", "looks_like_bounce"]
