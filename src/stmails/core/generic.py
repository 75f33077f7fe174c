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
    is_mta_daemon,
)
from stmails.core.finding import Finding
from stmails.core.reasons import scan

MAX_RECIPIENTS = 100

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
_QUOTED_TO = re.compile(r"^[ \t>]*to[ \t]*:", re.IGNORECASE)
# Header lines of a quoted original whose addresses are never the failed recipient.
_QUOTED_HEADER = re.compile(
    r"^[ \t>]*(?:from|sender|reply-to|return-path|message-id|in-reply-to|references|date)"
    r"[ \t]*:",
    re.IGNORECASE,
)
# An address in angle brackets or after an obvious label, anywhere on a line.
_INLINE_RECIPIENT = re.compile(
    r"(?:\b(?:to|for|recipient|address|delivering to|deliver to|mailbox|addressed,|"
    r"destinataire|adresse)[ \t]*:?[ \t]*<?|<|(?<!from)(?<!sender)(?<!cc)(?<!reply-to):[ \t]*"
    r"(?=[^\s<>@,;:\"()]{1,64}@[A-Za-z0-9.\-]{1,253}(?:[.,;]?[ \t]|[.,;]?$)))"
    r"([^\s<>@,;:\"()]{1,64}@[A-Za-z0-9.\-]{1,253})",
    re.IGNORECASE,
)
# A reply code at the start of a line or after a separator, ending its line or followed by a
# space or dash ("said: 550" at the end of a wrapped line counts).
_FAIL_REPLY_LINE = re.compile(r"(?:^|[\s:(\[\"'])[45][0-5]\d(?:[ \-]|$)", re.MULTILINE)
_ANY_REPLY_LINE = re.compile(r"(?:^|[\s:(\[\"'])[245][0-5]\d(?:[ \-]|$)", re.MULTILINE)
_STATUS_LINE = re.compile(r"(?<![\d.])(?:[45]\.\d{1,3}\.\d{1,3}|2\.[0-7]\.[0-7])(?![\d.])")
# Lowercase fragments (plain substring searches are much faster than a case-insensitive
# alternation over a whole report).
_FAILURE_PHRASES = (
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't delivered",
    "not be delivered",
    "undeliverable",
    "delivery failed",
    "delivery has failed",
    "failed permanently",
    "unable to deliver",
    "no valid recipients",
    "permanent error",
    "permanent fatal error",
    "did not reach",
    "delivery to the following",
    "returned mail",
    "could not deliver",
    "an error has occurred while attempting to deliver",
)
_TEMPORARY_PHRASES = (
    "temporary",
    "temporarily",
    "will continue to try",
    "will keep trying",
    "will keep try",
    "will retry",
    "delayed",
    "not yet been delivered",
    "retrying",
    "warning message only",
    "do not need to resend",
    "will be retried",
)
# Applied to lowercased text.
_MAIL_FROM = re.compile(r"mail from:?\s*<([^<>\s]{1,300})>")


def looks_like_bounce(ctx: Context) -> bool:
    """True when the message is a delivery failure report: carrying X-Failed-Recipients or a
    multipart/report, sent by an MTA's mailer-daemon or postmaster, or sent by another
    automated sender (noreply@...) or with a bounce-like subject and a text that speaks of a
    failure (an SMTP code or a known failure phrase), so that neither an ordinary reply titled
    "Rejected: ..." nor a newsletter from noreply@ is taken for one."""
    if ctx.root.get("x-failed-recipients") or "multipart/report" in ctx.part_types:
        return True
    if is_mta_daemon(ctx.sender) or is_mta_daemon(ctx.root.get("from").strip(' <>"')):
        return True
    if not is_daemon(ctx.sender) and _BOUNCE_SUBJECT.search(ctx.subject) is None:
        return False
    text = ctx.bounce_text
    lowered = text.lower()
    failure_said = any(phrase in lowered for phrase in _FAILURE_PHRASES)
    said = scan(text)
    return failure_said or _has_code(text) or bool(said.reasons or said.loose)


def _excluded(ctx: Context, text: str) -> set[str]:
    excluded = {ctx.sender, ctx.original.from_}
    for match in _MAIL_FROM.finditer(text[:20000].lower()):
        excluded.add(clean_address(match.group(1)))
    excluded.discard("")
    return excluded


def find_recipients(ctx: Context) -> list[tuple[str, int]]:
    """Failed recipients and the line index where each is first named, in text order.

    Addresses on a line of their own beat addresses named inline. The sender's addresses
    (the report's To, the original From, MAIL FROM) count only when nothing else is named:
    test and forwarded bounces do report on the sender's own address.
    """
    lines = ctx.report_lines()
    own_line: dict[str, int] = {}
    inline: dict[str, int] = {}
    # "To: a@b" quotes the returned message's header ("Your message To: ... did not reach the
    # following recipient(s)"): it names a recipient only when nothing else does.
    quoted: dict[str, int] = {}
    for index, line in enumerate(lines):
        if "@" not in line or _QUOTED_HEADER.match(line):
            continue
        match = _ADDRESS_LINE.match(line)
        if match is not None:
            address = clean_address(match.group(1))
            tier = quoted if _QUOTED_TO.match(line) else own_line
            if address and not is_daemon(address):
                tier.setdefault(address, index)
                continue
        for hit in _INLINE_RECIPIENT.finditer(line[:2000]):
            address = clean_address(hit.group(1))
            if address and not is_daemon(address):
                inline.setdefault(address, index)
        if len(own_line) >= MAX_RECIPIENTS:
            break
    # The report's own addressee (our bounce address, a list's owner) is never the failed
    # recipient when another is named; the sender of the returned message and the MAIL FROM
    # of a transcript may be, in a test or a forwarded bounce.
    ours = {ctx.to, ctx.sender, ctx.original.list_address} - {""}
    senders = _excluded(ctx, ctx.bounce_text) | ours
    tiers = (own_line, inline, quoted)
    for excluded in (senders, ours, set()):
        for found in tiers:
            named = [(a, index) for a, index in found.items() if a not in excluded]
            if named:
                return named[:MAX_RECIPIENTS]
    return _bare_names(ctx)


# A heading over a list of failed recipients, and a line holding one bare mailbox name (AOL
# listed its members' screen names without the domain).
_FAILED_LIST_HEADING = re.compile(
    r"(?:following|these) (?:recipients?|addresses|address\(es\)|users?)\b", re.IGNORECASE
)
_BARE_NAME = re.compile(r"^[ \t]+([A-Za-z0-9][A-Za-z0-9._+\-]{0,63})[ \t]*$")


def _bare_names(ctx: Context) -> list[tuple[str, int]]:
    """Mailbox names listed without a domain under a failed-recipients heading, completed
    with the domain of the MTA that reports them (their mail system's own users)."""
    domain = ctx.sender.rsplit("@", 1)[-1] if "@" in ctx.sender else ""
    if not domain:
        return []
    lines = ctx.report_lines()
    found: list[tuple[str, int]] = []
    for index, line in enumerate(lines[:200]):
        if not _FAILED_LIST_HEADING.search(line):
            continue
        for offset, following in enumerate(lines[index + 1 : index + 12], index + 1):
            bare = _BARE_NAME.match(following)
            if bare is not None:
                found.append((f"{bare.group(1).lower()}@{domain}", offset))
            elif following.strip() and found:
                break
        if found:
            return found[:MAX_RECIPIENTS]
    return []


def _has_failure_code(text: str) -> bool:
    """True when `text` carries a 4xx/5xx reply code or a 4.x.x/5.x.x status code."""
    if _FAIL_REPLY_LINE.search(text[:4096]):
        return True
    return any(code.group(0)[0] in "45" for code in _STATUS_LINE.finditer(text[:4096]))


def _has_code(text: str) -> bool:
    return bool(_FAIL_REPLY_LINE.search(text) or _STATUS_LINE.search(text))


# A rule ("-----", "=== x ===", "--- Original message ---"). The dashes that open and close the
# second form are exactly three in the pattern (more are taken by ".*"): with "-{3,}" on both
# sides, a run of dashes could be split three ways and a line of them backtracked cubically.
_RULE_LINE = re.compile(r"^(?:[-=*_#~ ]{3,}|-{3}.*-{3})$")
# Sendmail's record of one delivery attempt ("550 <a@b.example>... User unknown",
# "421 mx.example (smtp)... Deferred") and the opening of its next SMTP session: each starts
# the account of another recipient or host.
_SENDMAIL_RECORD = re.compile(r"^[245]\d\d <?[^\s<>]{1,300}>?(?: \([a-z]{1,10}\))?\.\.\. ")
_SESSION_OPENING = "While talking to "


def _paragraph(lines: list[str], index: int, address: str = "") -> list[str]:
    """The paragraph starting at `index` (blank lines before it skipped); a line ending with
    a colon continues into the next paragraph; a line opening another address (not
    `address` again, as in "said: 550" then "<a@b>: User unknown") or a rule ends it."""
    block: list[str] = []
    for offset, line in enumerate(lines[index : index + 10]):
        stripped = line.strip()
        if not stripped or _RULE_LINE.match(stripped):
            if block and not block[-1].endswith(":"):
                break
            continue
        if offset and block and "@" in stripped and _names_other_address(line, address):
            break
        if offset and block and _starts_another_record(stripped):
            break
        block.append(stripped)
    return block


def _names_other_address(line: str, address: str) -> bool:
    """True for a line that opens with an address other than `address`."""
    found = _ADDRESS_LINE.match(line)
    return found is not None and (not address or clean_address(found.group(1)) != address)


def _starts_another_record(stripped: str) -> bool:
    """True for a line that opens another recipient's or host's account in a transcript."""
    if stripped.startswith(_SESSION_OPENING):
        return True
    return stripped[:1].isdigit() and _SENDMAIL_RECORD.match(stripped) is not None


def _diagnostic_of(segment: list[str], address: str, before: list[str] | None = None) -> str:
    """The server's words in a recipient's segment: the paragraph of the first line carrying a
    failure reply code, else a status code, else the text right after the address, else the
    paragraph just before it (some MTAs put the reason above the address)."""
    joined = "\n".join(segment)
    for pattern in (_FAIL_REPLY_LINE, _STATUS_LINE, _ANY_REPLY_LINE):
        found = pattern.search(joined)
        if found is not None:
            # The match may begin with the newline before its line: count it in.
            index = joined.count("\n", 0, found.start() + 1)
            # The lines that lead to the reply in the same paragraph ("Connected to ... but
            # sender was rejected.", "SMTP error from remote mail server after RCPT TO:") are
            # part of the account.
            top = index
            while top > 1 and _continues_above(segment[top - 1], address):
                top -= 1
            lead = [line.strip() for line in segment[top:index]]
            return collapse(" ".join(lead + _paragraph(segment, index, address)))
    if not segment:
        return ""
    first = segment[0].lower().replace(address, " ", 1) if address else segment[0]
    first = first.replace("<>", " ").strip(" \t<>:;,.-()[]")
    block = [segment[0].strip()] if first else []
    if len(segment) > 1:
        block.extend(_paragraph(segment, 1))
    text = collapse(" ".join(block))
    if len(text.replace(address, "").strip(" <>:;,.()[]")) < 3 and before:
        above = [line.strip() for line in before[-8:]]
        while above and not above[-1]:
            above.pop()
        tail: list[str] = []
        while above and above[-1] and not _RULE_LINE.match(above[-1]):
            tail.insert(0, above.pop())
        return collapse(" ".join(tail)) or text
    return text


def _continues_above(line: str, address: str) -> bool:
    """True when the line above a reply is part of the same account: not blank, not a rule,
    not the start of another recipient's or session's account."""
    stripped = line.strip()
    if not stripped or _RULE_LINE.match(stripped) or _starts_another_record(stripped):
        return False
    if stripped[:3] in ("---", "===", "***", "###"):
        # A heading ("-------server message") introduces the account; it is not part of it.
        return False
    if _ANY_REPLY_LINE.search(stripped) or _STATUS_LINE.search(stripped):
        # An earlier reply of a session transcript is another exchange.
        return False
    return not ("@" in stripped and _names_other_address(line, address))


def _failed_header(ctx: Context) -> list[str]:
    value = ctx.root.get("x-failed-recipients")[:4000]
    out: list[str] = []
    for match in ADDRESS.finditer(value):
        address = clean_address(match.group(0))
        if address and address not in out:
            out.append(address)
    return out[:MAX_RECIPIENTS]


def _locate(ctx: Context, address: str) -> int:
    """The index of the first report-text line naming `address` (not as the tail of a longer
    address), or -1."""
    if not address:
        return -1
    for index, line in enumerate(ctx.report_lines_lower()):
        position = line.find(address)
        while position >= 0:
            before = line[position - 1 : position] if position else ""
            if not before or before not in _ADDRESS_CHARS:
                return index
            position = line.find(address, position + 1)
    return -1


# Characters an address may continue with on its left.
_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~.-")


def recipients_and_segments(ctx: Context) -> list[tuple[str, list[str], int]]:
    """Each failed recipient with the lines of the report that speak about it."""
    lines = ctx.report_lines()
    named = find_recipients(ctx)
    failed = _failed_header(ctx)
    if failed:
        # The X-Failed-Recipients header is authoritative about who failed.
        named = [(address, _locate(ctx, address)) for address in failed]
    elif not named and ctx.original.to not in ("", ctx.to, ctx.original.list_address):
        # Nothing named in the text: the returned original says whom it was sent to (unless
        # it was sent to a mailing list, whose address is every member's To).
        named = [(ctx.original.to, _locate(ctx, ctx.original.to))]
    starts = sorted({start for _, start in named if start >= 0})
    out: list[tuple[str, list[str], int]] = []
    for address, start in named:
        if start < 0:
            out.append((address, lines[:40], 0))
            continue
        later = [s for s in starts if s > start]
        end = later[0] if later else len(lines)
        earlier = [s for s in starts if s < start]
        top = _transcript_above(lines, start, earlier[-1] if earlier else -1)
        segment = lines[top : min(end, start + 40)]
        out.append((_expanded_from(segment[: start - top + 3]) or address, segment, top))
    return out


# Sendmail's "(expanded from: <list@example>)" and Exim's "(generated from a@b)" under a failed
# address: the address the message was sent to, which an alias or forward turned into it.
_EXPANDED_FROM = re.compile(
    r"\((?:expanded|generated) from:?[ \t]*<?([^\s<>()@]{1,64}@[A-Za-z0-9.\-]{1,253})>?\)",
    re.IGNORECASE,
)


def _expanded_from(head: list[str]) -> str:
    for line in head:
        if "from" in line:
            found = _EXPANDED_FROM.search(line[:1000])
            if found is not None:
                return clean_address(found.group(1))
    return ""


def _transcript_above(lines: list[str], start: int, floor: int) -> int:
    """Where a recipient's account starts when a sendmail record ("554 <a@b>... Remote
    protocol error") follows the session exchange that caused it (">>> MAIL From:<...>",
    "<<< 501 ... no access"): the exchange's first line, else `start`. The exchange belongs
    to the record when it names no other recipient and carries a failed reply."""
    if not _SENDMAIL_RECORD.match(lines[start].strip()):
        return start
    top = start
    failed = False
    while top - 1 > floor and lines[top - 1].lstrip().startswith((">>>", "<<<")):
        top -= 1
        line = lines[top].lstrip()
        if line.startswith("<<<") and _FAIL_REPLY_LINE.search(line[3:]):
            failed = True
        if line.lower().startswith(">>> rcpt"):
            # The exchange names its own recipient: it is that recipient's account.
            return start
    return top if failed else start


def account_of(ctx: Context, address: str) -> str:
    """What the report text says about one recipient where it names it, or ""."""
    start = _locate(ctx, address) if address else -1
    if start < 0:
        return ""
    lines = ctx.report_lines()
    diagnostic = _diagnostic_of(
        lines[start : start + 12], address, lines[max(0, start - 10) : start]
    )
    return diagnostic if _has_code(diagnostic) or len(diagnostic) > 8 else ""


def diagnostic_for(ctx: Context, address: str) -> str:
    """The report text's diagnostic for one recipient (used when a DSN carries none): its
    account where the text names it, else the text's own diagnostic."""
    return account_of(ctx, address) or _diagnostic_of(ctx.report_lines(), "")


def detect_generic(ctx: Context) -> list[Finding] | None:
    """Recipients and diagnostics read from the human-readable text of a bounce."""
    if not looks_like_bounce(ctx):
        return None
    text = ctx.bounce_text
    lines = ctx.report_lines()
    named = recipients_and_segments(ctx)
    if not named:
        return None
    lowered = text[:8000].lower()
    temporary = any(phrase in lowered for phrase in _TEMPORARY_PHRASES)
    findings: list[Finding] = []
    for address, segment, start in named:
        diagnostic = _diagnostic_of(segment, address, lines[max(0, start - 10) : max(start, 0)])
        if len(named) == 1 and not _has_code(diagnostic):
            whole = _diagnostic_of(lines, "")
            if _has_failure_code(whole):
                diagnostic = whole
        status = find_status(diagnostic)
        replycode = find_replycode(diagnostic, status)
        if (status or replycode).startswith("2"):
            # A success line of a session transcript is not a failure report.
            continue
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
                context_text=text[:3000],
                command=find_command("\n".join(segment)),
            )
        )
    return findings


__all__ = [
    "ADDRESS",
    "account_of",
    "detect_generic",
    "diagnostic_for",
    "find_recipients",
    "looks_like_bounce",
]
