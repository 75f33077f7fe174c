"""From raw bytes to records: parse, run the detector registry, then apply the reason rules."""

from __future__ import annotations

from stmails.core.context import Context, Original
from stmails.core.detectors import REGISTRY
from stmails.core.fields import collapse
from stmails.core.finding import Finding
from stmails.core.message import normalize, parse_part
from stmails.core.reasons import is_hard, match_reason, reason_from_text
from stmails.core.record import BounceRecord, type_for


def decide_reason(finding: Finding) -> str:
    """The reason for one finding: stated by the format, else from its diagnostic and codes,
    consulting the surrounding text only when the diagnostic names no known reason."""
    if finding.reason:
        return finding.reason
    if finding.action == "delivered" or finding.status.startswith("2."):
        return "delivered"
    reason = match_reason(finding.diagnostic, finding.status, finding.replycode)
    if reason in ("undefined", "onhold") and finding.context_text:
        by_context = reason_from_text(finding.context_text)
        if by_context:
            reason = by_context
    if reason in ("undefined", "onhold") and finding.diagnostic_type == "x-unix":
        # An X-Unix diagnostic is the exit status of a local delivery program.
        reason = "mailererror"
    if reason in ("undefined", "onhold") and finding.action == "delayed":
        reason = "expired"
    return adjust_for_command(reason, finding.command, finding.status)


def adjust_for_command(reason: str, command: str, status: str) -> str:
    """Refine a reason with the SMTP command the failure answered: an address refused after
    DATA was accepted at RCPT (so it exists: the content was filtered), a failure at MAIL FROM
    is about the sender, a refusal at connection or HELO is a block."""
    if command == "DATA" and reason == "userunknown":
        return "filtered"
    if command == "MAIL" and reason in ("userunknown", "hostunknown", "undefined", "notaccept"):
        return "rejected"
    if command in ("HELO", "CONN") and reason in ("undefined", "userunknown", "rejected"):
        return "blocked"
    return reason


def _record(finding: Finding, detector: str, original: Original) -> BounceRecord:
    reason = decide_reason(finding)
    status = finding.status
    return BounceRecord(
        recipient=finding.recipient,
        reason=reason,
        hard=is_hard(reason, status) and finding.action != "delayed",
        type=type_for(reason, status, finding.action),
        status=status,
        replycode=finding.replycode,
        diagnostic=collapse(finding.diagnostic),
        action=finding.action,
        remote_mta=finding.remote_mta[:255],
        reporting_mta=finding.reporting_mta[:255],
        timestamp=finding.timestamp[:100],
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
        original = ctx.original
        return [_record(f, name, original) for f in findings if f.recipient]
    return []


def classify_message(raw: bytes) -> list[BounceRecord]:
    """Classify the raw bytes of one message (see `stmails.core.classify`)."""
    return classify_context(Context.from_root(parse_part(normalize(raw))))
