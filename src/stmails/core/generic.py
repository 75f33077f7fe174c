"""The generic reader for human-readable bounces of any MTA: recipients and diagnostics from text.

Most non-standard bounces (qmail, Exim, Gmail, Yahoo, Exchange, ...) share one shape: a few
lines of boilerplate, then each failed address on its own line (bare, in angle brackets, or
followed by a colon), then the remote server's words with an SMTP reply code and often an
enhanced status code. This module reads that shape without knowing the MTA.
"""

from __future__ import annotations

import re

from stmails.core.context import Context
from stmails.core.fields import (
    ADDRESS,
    clean_address,
    collapse,
    find_command,
    find_replycode,
    find_status,
    is_daemon,
)
from stmails.core.finding import Finding

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
    r"^[ \t>*\-•]*(?:(?:to|recipient|rcpt|address|original-recipient|final-recipient|"
    r"failed recipient|destinataire|empfänger|recipient address)[ \t]*:?[ \t]*)?"
    r"(?:rfc822;[ \t]*)?[\"']?<?(?:mailto:)?([^\s<>@,;:\"()\[\]]{1,64}@[A-Za-z0-9.\-]{1,253})",
    re.IGNORECASE,
)
# An address in angle brackets or after an obvious label, anywhere on a line.
_INLINE_RECIPIENT = re.compile(
    r"(?:\b(?:to|for|recipient|address|delivering to|deliver to|"
    r"destinataire|adresse)[ \t]*:?[ \t]*<?|<|:[ \t]*(?=[^\s<>@,;:\"()]{1,64}@[^\s]{1,253}[ \t]*$))"
    r"([^\s<>@,;:\"()]{1,64}@[A-Za-z0-9.\-]{1,253})",
    re.IGNORECASE,
)
_FAIL_REPLY_LINE = re.compile(r"(?:^|[\s:(\[\"'])[45][0-5]\d(?:[ \-]|$)")
_ANY_REPLY_LINE = re.compile(r"(?:^|[\s:(\[\"'])[245][0-5]\d(?:[ \-]|$)")
_STATUS_LINE = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])")
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
    excluded = {ctx.sender, ctx.original.from_}
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
        for hit in _INLINE_RECIPIENT.finditer(line[:2000]):
            address = clean_address(hit.group(1))
            usable = address and address not in excluded and not is_daemon(address)
            if usable and address not in seen_inline:
                seen_inline.add(address)
                inline.append((address, index))
        if len(own_line) >= MAX_RECIPIENTS:
            break
    named = own_line or inline
    # The report's own To is normally the original sender: drop it when others are named.
    if len(named) > 1 and any(address == ctx.to for address, _ in named):
        named = [item for item in named if item[0] != ctx.to]
    return named[:MAX_RECIPIENTS]


def _has_code(text: str) -> bool:
    return bool(_FAIL_REPLY_LINE.search(text) or _STATUS_LINE.search(text))


def _paragraph(lines: list[str], index: int) -> list[str]:
    block: list[str] = []
    for line in lines[index : index + 8]:
        if not line.strip():
            if block:
                break
            continue
        block.append(line.strip())
    return block


def _diagnostic_of(segment: list[str], address: str) -> str:
    """The server's words in a recipient's segment: the paragraph of the first line carrying a
    failure reply code, else a status code, else the text right after the address."""
    for pattern in (_FAIL_REPLY_LINE, _STATUS_LINE, _ANY_REPLY_LINE):
        for index, line in enumerate(segment):
            if pattern.search(line):
                return collapse(" ".join(_paragraph(segment, index)))
    if not segment:
        return ""
    first = segment[0].replace(address, " ", 1) if address else segment[0]
    first = first.replace("<>", " ").strip(" \t<>:;,.-()[]")
    block = [first] if first else []
    block.extend(_paragraph(segment[1:], 0) if len(segment) > 1 else [])
    return collapse(" ".join(block))


def _failed_header(ctx: Context) -> list[str]:
    value = ctx.root.get("x-failed-recipients")[:4000]
    out: list[str] = []
    for match in ADDRESS.finditer(value):
        address = clean_address(match.group(0))
        if address and address not in out:
            out.append(address)
    return out[:MAX_RECIPIENTS]


def _locate(lines: list[str], address: str) -> int:
    for index, line in enumerate(lines):
        if address in line.lower():
            return index
    return -1


def recipients_and_segments(ctx: Context) -> list[tuple[str, list[str]]]:
    """Each failed recipient with the lines of the report that speak about it."""
    lines = ctx.bounce_text.split("\n")[:MAX_LINES]
    named = find_recipients(ctx, ctx.bounce_text)
    failed = _failed_header(ctx)
    if failed:
        # The X-Failed-Recipients header is authoritative about who failed.
        named = [(address, _locate(lines, address)) for address in failed]
    elif (
        not named
        and ctx.original.to
        and ("message/rfc822" in ctx.part_types or "text/rfc822-headers" in ctx.part_types)
    ):
        named = [(ctx.original.to, _locate(lines, ctx.original.to))]
    starts = sorted({start for _, start in named if start >= 0})
    out: list[tuple[str, list[str]]] = []
    for address, start in named:
        if start < 0:
            out.append((address, lines[:40]))
            continue
        later = [s for s in starts if s > start]
        end = later[0] if later else len(lines)
        out.append((address, lines[start : min(end, start + 40)]))
    return out


def diagnostic_for(ctx: Context, address: str) -> str:
    """The report text's diagnostic for one recipient (used when a DSN carries none)."""
    lines = ctx.bounce_text.split("\n")[:MAX_LINES]
    start = _locate(lines, address) if address else -1
    if start >= 0:
        diagnostic = _diagnostic_of(lines[start : start + 12], address)
        if _has_code(diagnostic) or len(diagnostic) > 8:
            return diagnostic
    return _diagnostic_of(lines, "")


def detect_generic(ctx: Context) -> list[Finding] | None:
    """Recipients and diagnostics read from the human-readable text of a bounce."""
    if not looks_like_bounce(ctx):
        return None
    text = ctx.bounce_text
    lines = text.split("\n")[:MAX_LINES]
    named = recipients_and_segments(ctx)
    if not named:
        return None
    temporary = _TEMPORARY.search(text[:8000]) is not None
    findings: list[Finding] = []
    for address, segment in named:
        diagnostic = _diagnostic_of(segment, address)
        if len(named) == 1 and not _has_code(diagnostic):
            whole = _diagnostic_of(lines, "")
            if _has_code(whole):
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
                command=find_command(diagnostic) or find_command("\n".join(segment)),
            )
        )
    return findings


__all__ = ["ADDRESS", "detect_generic", "diagnostic_for", "find_recipients", "looks_like_bounce"]
