"""From raw bytes to records: parse, run the detector registry, then apply the reason rules."""

from __future__ import annotations

import re
from collections.abc import Callable

from stmails.core.context import Context
from stmails.core.detectors import REGISTRY
from stmails.core.fields import collapse, find_command, iso_timestamp
from stmails.core.finding import Finding
from stmails.core.message import normalize, parse_part
from stmails.core.mta import identify_mta
from stmails.core.reasons import (
    REVISABLE_REASONS,
    Evidence,
    infer_status,
    is_hard,
    reason_from_provider_code,
    reason_from_receiver,
    reason_from_text,
    scan,
    stated_by_mta,
)
from stmails.core.reasons.engine import settle, weigh
from stmails.core.record import BounceRecord, type_for


def decide_reason(finding: Finding, report_text: Callable[[], str] = str, mta: str = "") -> str:
    """The reason for one finding.

    A reason the format states stands (a complaint, an auto-reply), unless it is one an MTA
    says when it knows little (`REVISABLE_REASONS`). Then a provider's own code or documented
    text decides (the answering server's or the recipient domain's), then the rules of
    `stmails.core.reasons.engine` weigh the server's words and codes, the SMTP command and
    what the reporting MTA (`mta`, the record's detector) states in its own words. When they
    find nothing, the report's text around the diagnostic (the finding's, else
    `report_text`) is consulted, then broad words; words no table knows are `onhold`.
    """
    if finding.reason and finding.reason not in REVISABLE_REASONS:
        return finding.reason
    if finding.action == "delivered" or finding.status.startswith("2."):
        return "delivered"
    diagnostic = finding.diagnostic
    command = finding.command or find_command(diagnostic)
    if not command:
        # The report's text around the reply often names the phase the reply leaves out
        # ("(in reply to RCPT TO command)", a transcript's ">>> DATA").
        command = find_command(finding.context_text or report_text())
    words = unwrap_reply(diagnostic, finding.replycode, finding.status)
    said = scan(words)
    if not command and said.states("userunknown") and _validates_at_rcpt(finding):
        # Providers documented to refuse unknown recipients at RCPT need no phase named.
        command = "RCPT"
    stated = finding.reason or stated_by_mta(mta, diagnostic, command, finding.status)
    if stated == "userunknown" and _is_receipt_rule_bounce(finding.reporting_mta):
        # An SES receipt rule's "Mailbox does not exist" is the domain's filter speaking.
        stated = "filtered"
    evidence = Evidence(
        text=words,
        status=finding.status,
        replycode=finding.replycode,
        command=command,
        diagnostic_type=finding.diagnostic_type,
        action=finding.action,
        stated=stated,
    )
    by_provider = reason_from_receiver(
        finding.remote_mta, finding.recipient, evidence
    ) or reason_from_provider_code(diagnostic)
    if by_provider:
        return by_provider
    reason = weigh(evidence, said)
    if reason in ("", "onhold") and not stated:
        # The report's own explanation may state the cause the quoted reply leaves out.
        reason = reason_from_text(finding.context_text or report_text()) or reason
    reason = settle(evidence, said, reason)
    if reason == "onhold" and not _states_a_cause(diagnostic) and finding.status[:1] != "4":
        # Boilerplate that announces a failure without saying why states no cause.
        reason = "undefined"
    if reason == "userunknown" and _is_receipt_rule_bounce(finding.reporting_mta):
        return "filtered"
    return reason


def unwrap_reply(diagnostic: str, replycode: str, status: str) -> str:
    """A multi-line SMTP reply read as one text: the "550-5.2.1" (and "550 5.2.1") that open
    each of its lines removed, so that words broken across lines read as they were written.
    Single-line replies are returned unchanged."""
    if not replycode or f"{replycode}-" not in diagnostic:
        return diagnostic
    text = diagnostic
    for separator in ("-", " "):
        if status:
            text = text.replace(f"{replycode}{separator}{status}", " ")
        text = text.replace(f"{replycode}{separator}", " ")
    return f"{replycode} {status} {' '.join(text.split())}".replace("  ", " ")


# Providers that answer an unknown recipient at RCPT, as their postmaster pages document:
# Symantec/Broadcom Email Security.cloud (MessageLabs: "550 Invalid recipient", "No such
# user") and au/KDDI (ezweb.ne.jp, au.com: "550 <address>: User unknown") and Outlook.com
# (hotmail.com, outlook.com: "550 Requested action not taken: mailbox unavailable").
_RCPT_VALIDATING_HOST = re.compile(
    r"(?:^|[.\s;])(?:messagelabs\.com|ezweb\.ne\.jp|au\.com|hotmail\.com|outlook\.com)\b"
)


def _validates_at_rcpt(finding: Finding) -> bool:
    """True when the remote or reporting host is a provider that refuses unknown recipients
    at RCPT, so its unknown-user reply needs no phase named to be one."""
    hosts = f"{finding.remote_mta[:255]} {finding.reporting_mta[:255]}".lower()
    return _RCPT_VALIDATING_HOST.search(hosts) is not None


def _is_receipt_rule_bounce(reporting_mta: str) -> bool:
    """True for Amazon SES receiving (inbound-smtp.<region>.amazonaws.com): its DSNs come from
    a Bounce action of the recipient domain's receipt rules, whose texts the rule's author
    picks ("Mailbox does not exist"); no mailbox lookup stands behind them, so an unknown
    user there is the domain's filter."""
    host = reporting_mta.lower()
    return host.startswith("inbound-smtp.") and host.endswith(".amazonaws.com")


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


def _record(finding: Finding, detector: str, ctx: Context) -> BounceRecord:
    original = ctx.original
    reason = decide_reason(finding, lambda: ctx.bounce_text, detector)
    # A code found in the message is reported as is; without one, the reason's standard code
    # in the failure's class is inferred (and flagged, so the difference stays explainable).
    status = finding.status or infer_status(reason, finding.replycode, finding.action)
    return BounceRecord(
        recipient=finding.recipient,
        reason=reason,
        hard=is_hard(reason, status) and finding.action != "delayed",
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


# The readers of formats many MTAs share; records they produce name the MTA instead.
_MTA_NEUTRAL_READERS = frozenset({"dsn", "generic"})


def classify_context(ctx: Context) -> list[BounceRecord]:
    """Run the registry on a parsed message; the first detector that claims it decides."""
    for name, detector in REGISTRY:
        findings = detector(ctx)
        if findings is None:
            continue
        if name in _MTA_NEUTRAL_READERS:
            # Name the MTA whose report the standard or generic reader read, when known.
            name = identify_mta(ctx) or name
        # A complaint counts even when the report hides its recipient: the original's
        # headers may still name the subscriber. Any other finding needs its address.
        kept = [f for f in findings if f.recipient or f.reason == "feedback"]
        return [_record(f, name, ctx) for f in kept]
    return []


def classify_message(raw: bytes) -> list[BounceRecord]:
    """Classify the raw bytes of one message (see `stmails.core.classify`)."""
    return classify_context(Context.from_root(parse_part(normalize(raw))))
