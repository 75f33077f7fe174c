"""From raw bytes to records: parse, run the detector registry, then apply the reason rules."""

from __future__ import annotations

from collections.abc import Callable

from stmails.core.context import Context
from stmails.core.detectors import REGISTRY
from stmails.core.fields import collapse, find_command, iso_timestamp
from stmails.core.finding import Finding
from stmails.core.message import normalize, parse_part
from stmails.core.reasons import is_hard, match_reason, reason_from_status, reason_from_text
from stmails.core.record import BounceRecord, type_for


def decide_reason(finding: Finding, report_text: Callable[[], str] = str) -> str:
    """The reason for one finding: stated by the format, else from its diagnostic and codes,
    consulting the surrounding text (the finding's, else `report_text`) only when the
    diagnostic names no known reason."""
    if finding.reason:
        return finding.reason
    if finding.action == "delivered" or finding.status.startswith("2."):
        return "delivered"
    reason = match_reason(finding.diagnostic, finding.status, finding.replycode)
    if reason in ("undefined", "onhold"):
        by_context = reason_from_text(finding.context_text or report_text())
        if by_context:
            reason = by_context
    if reason in ("undefined", "onhold") and finding.diagnostic_type == "x-unix":
        # An X-Unix diagnostic is the exit status of a local delivery program.
        reason = "mailererror"
    if reason in ("undefined", "onhold") and finding.action == "delayed":
        reason = "expired"
    if reason not in _COMMAND_SENSITIVE:
        return reason
    command = (
        finding.command
        or find_command(finding.diagnostic)
        or find_command(finding.context_text or report_text())
    )
    explicit = any(phrase in finding.diagnostic.lower() for phrase in _EXPLICIT_NO_ACCOUNT)
    return adjust_for_command(reason, command, finding.status, explicit)


# Wordings that state the account does not exist even when said in answer to DATA.
_EXPLICIT_NO_ACCOUNT = ("doesn't have a", "does not have an account", "no such account")


_COMMAND_SENSITIVE = frozenset({"userunknown", "hostunknown", "undefined", "notaccept", "rejected"})


def adjust_for_command(reason: str, command: str, status: str, explicit: bool = False) -> str:
    """Refine a reason with the SMTP command the failure answered.

    An "unknown user" said in answer to DATA came after RCPT accepted the address, so the
    address exists and the content was filtered; that does not apply when the status code
    names an unknown mailbox or `explicit` (the server said in so many words that the account
    does not exist). A failure at MAIL FROM is about the sender; a refusal at connection or
    HELO is a block.
    """
    data_refusal = command == "DATA" and reason_from_status(status) != "userunknown"
    if data_refusal and reason == "userunknown" and not explicit:
        return "filtered"
    if command == "MAIL" and reason in ("userunknown", "hostunknown", "undefined", "notaccept"):
        return "rejected"
    if command in ("HELO", "CONN") and reason in ("undefined", "userunknown", "rejected"):
        return "blocked"
    return reason


def _record(finding: Finding, detector: str, ctx: Context) -> BounceRecord:
    original = ctx.original
    reason = decide_reason(finding, lambda: ctx.bounce_text)
    # Without an enhanced code, the reply code's class is the status inferred (550 -> 5.0.0).
    status = finding.status or (f"{finding.replycode[0]}.0.0" if finding.replycode else "")
    return BounceRecord(
        recipient=finding.recipient,
        reason=reason,
        hard=is_hard(reason, status),
        type=type_for(reason, status, finding.action),
        status=status,
        replycode=finding.replycode,
        diagnostic=collapse(finding.diagnostic),
        action=finding.action,
        remote_mta=finding.remote_mta[:255],
        reporting_mta=finding.reporting_mta[:255],
        timestamp=iso_timestamp(finding.timestamp) or iso_timestamp(ctx.root.get("date")),
        feedback_type=finding.feedback_type,
        user_agent=finding.user_agent,
        message_id=original.message_id,
        subject=original.subject,
        from_=original.from_,
        campaign=original.campaign,
        subscriber=original.subscriber,
        detector=detector,
    )


def classify_context(ctx: Context) -> list[BounceRecord]:
    """Run the registry on a parsed message; the first detector that claims it decides."""
    for name, detector in REGISTRY:
        findings = detector(ctx)
        if findings is None:
            continue
        return [_record(f, name, ctx) for f in findings if f.recipient]
    return []


def classify_message(raw: bytes) -> list[BounceRecord]:
    """Classify the raw bytes of one message (see `stmails.core.classify`)."""
    return classify_context(Context.from_root(parse_part(normalize(raw))))
