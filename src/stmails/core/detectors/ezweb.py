"""au (KDDI) EZweb and au.com reports ("Mail System Error - Returned Mail").

au's mail system signs its reports with at least two of: From Postmaster@ezweb.ne.jp or
Postmaster@au.com, the subject "Mail System Error - Returned Mail", a Received header of its
"(EZweb Mail)" servers, a Message-ID at .ezweb.ne.jp or .au.com. It lays recipients out
either as a DSN or as `<address>` lines with a transcript, and states the account's condition
in its own fixed English sentences. A report carrying `X-SPASIGN: NG` was produced by au's
spam and domain filter (the recipient's reception settings refused the sender).
"""

from __future__ import annotations

from stmails.core.context import Context
from stmails.core.finding import Finding
from stmails.core.generic import detect_generic
from stmails.core.standard import detect_dsn

_SUBJECT = "Mail System Error - Returned Mail"
_POSTMASTERS = ("postmaster@ezweb.ne.jp", "postmaster@au.com")
_MESSAGE_ID_ENDS = (".ezweb.ne.jp>", ".au.com>")
# au's own sentences about the recipient's account, and what each states.
_ACCOUNT_STATEMENTS = (
    ("the user(s) account is disabled.", "suspend"),
    ("the user(s) account is temporarily limited.", "suspend"),
    ("the user(s) account is temporarily over quota", "mailboxfull"),
    ("your message was not delivered within ", "expired"),
)


def _signature_count(ctx: Context) -> int:
    sender = ctx.root.get("from").lower()[:500]
    received = ctx.root.get_all("received")[:30]
    message_id = ctx.root.get("message-id").strip().lower()
    return sum(
        (
            any(postmaster in sender for postmaster in _POSTMASTERS),
            ctx.subject.strip() == _SUBJECT,
            any("(EZweb Mail) with" in value or ".au.com (" in value for value in received),
            message_id.endswith(_MESSAGE_ID_ENDS),
        )
    )


def detect_ezweb(ctx: Context) -> list[Finding] | None:
    """The findings of an au EZweb report, or None for any other message."""
    if _signature_count(ctx) < 2:
        return None
    findings = detect_dsn(ctx) or detect_generic(ctx)
    if not findings:
        return None
    if ctx.root.get("x-spasign").strip().upper() == "NG":
        stated = "filtered"
    else:
        lowered = ctx.bounce_text[:8000].lower()
        stated = next((r for phrase, r in _ACCOUNT_STATEMENTS if phrase in lowered), "")
    for finding in findings:
        if stated and not finding.reason:
            finding.reason = stated
    return findings
