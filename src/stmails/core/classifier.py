"""From raw bytes to records: parse, run the detector registry, then apply the reason rules."""

from __future__ import annotations

from collections.abc import Callable

from stmails.core.context import Context
from stmails.core.detectors import REGISTRY
from stmails.core.fields import collapse, find_command, iso_timestamp
from stmails.core.finding import Finding
from stmails.core.message import normalize, parse_part
from stmails.core.reasons import (
    infer_status,
    is_hard,
    match_reason,
    reason_from_provider_code,
    reason_from_status,
    reason_from_text,
)
from stmails.core.record import BounceRecord, type_for


def decide_reason(finding: Finding, report_text: Callable[[], str] = str) -> str:
    """The reason for one finding: stated by the format, else from its diagnostic and codes,
    consulting the surrounding text (the finding's, else `report_text`) only when the
    diagnostic names no known reason."""
    if finding.reason:
        return finding.reason
    if finding.action == "delivered" or finding.status.startswith("2."):
        return "delivered"
    by_code = reason_from_provider_code(finding.diagnostic)
    if by_code:
        return by_code
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
    if reason == "undefined" and _states_a_cause(finding.diagnostic):
        # Words of the server that no table knows: the cause is stated but unclassified.
        reason = "onhold"
    if reason not in _COMMAND_SENSITIVE:
        return reason
    command = (
        finding.command
        or find_command(finding.diagnostic)
        or find_command(finding.context_text or report_text())
    )
    explicit = any(phrase in finding.diagnostic.lower() for phrase in _EXPLICIT_NO_ACCOUNT)
    return adjust_for_command(
        reason, command, finding.status, explicit, quoted_reply=bool(finding.replycode)
    )


# Report boilerplate that announces a failure without saying why.
_FAILURE_ANNOUNCEMENTS = (
    "could not be delivered",
    "failed permanently",
    "delivery has failed",
    "was not delivered",
    "undeliverable",
)


def _states_a_cause(diagnostic: str) -> bool:
    """True when a diagnostic has words other than an announcement that delivery failed."""
    lowered = diagnostic[:1000].lower()
    return bool(lowered.strip()) and not any(p in lowered for p in _FAILURE_ANNOUNCEMENTS)


# Wordings that state the account does not exist even when said in answer to DATA.
_EXPLICIT_NO_ACCOUNT = ("doesn't have a", "does not have an account", "no such account")


_COMMAND_SENSITIVE = frozenset({"userunknown", "hostunknown", "undefined", "notaccept", "rejected"})


def adjust_for_command(
    reason: str, command: str, status: str, explicit: bool = False, quoted_reply: bool = True
) -> str:
    """Refine a reason with the SMTP command the failure answered.

    A recipient is refused as unknown in answer to RCPT. A remote server's "unknown user"
    reply (`quoted_reply`: the report quotes its SMTP reply code) that the report does not tie
    to RCPT came later, from a filter that refuses the recipient after the address was
    accepted: `filtered`. That does not apply when the enhanced code names a bad destination
    mailbox (X.1.x other than the host, moved and sender codes), when `explicit` (the server
    said in so many words that the account does not exist), or when the reporting MTA says it
    in its own words (no quoted reply: its own directory lookup). A failure at MAIL FROM is
    about the sender; a refusal at connection or HELO is a block.
    """
    if reason == "userunknown" and command not in ("RCPT", "MAIL") and not explicit:
        after_acceptance = command == "DATA" or quoted_reply
        if after_acceptance and not _names_bad_mailbox(status):
            return "filtered"
    if command == "MAIL" and reason in ("userunknown", "hostunknown", "undefined", "notaccept"):
        return "rejected"
    if command in ("HELO", "CONN") and reason in ("undefined", "userunknown", "rejected"):
        return "blocked"
    return reason


# X.1.x codes about something other than the destination mailbox: its host (X.1.2), a move
# (X.1.6), the sender (X.1.7, X.1.8), a relay (X.1.9).
_NOT_MAILBOX_ADDRESS_CODES = frozenset({"1.2", "1.6", "1.7", "1.8", "1.9"})


def _names_bad_mailbox(status: str) -> bool:
    """True for an enhanced code about the destination mailbox address (5.1.1, 5.1.10...)."""
    if reason_from_status(status) == "userunknown":
        return True
    return status[1:4] == ".1." and status[2:] not in _NOT_MAILBOX_ADDRESS_CODES


def _record(finding: Finding, detector: str, ctx: Context) -> BounceRecord:
    original = ctx.original
    reason = decide_reason(finding, lambda: ctx.bounce_text)
    # A code found in the message is reported as is; without one, the reason's standard code
    # in the failure's class is inferred (and flagged, so the difference stays explainable).
    status = finding.status or infer_status(reason, finding.replycode, finding.action)
    return BounceRecord(
        recipient=finding.recipient,
        reason=reason,
        hard=is_hard(reason, status),
        type=type_for(reason, status, finding.action),
        status=status,
        status_inferred=bool(status) and not finding.status,
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
