"""Amazon SES notifications delivered by email (an SNS envelope or the bare notification JSON).

SES can send its Bounce, Complaint and Delivery notifications to an email address through SNS;
the body is JSON. The fields used are documented in the SES developer guide ("Amazon SES
notification contents").
"""

from __future__ import annotations

import json
from typing import Any

from stmails.core.context import Context
from stmails.core.fields import clean_address, collapse, find_replycode, find_status
from stmails.core.finding import Finding

MAX_JSON = 256 * 1024
MAX_ITEMS = 500
FEEDBACK_TYPES = {"abuse", "auth-failure", "fraud", "not-spam", "other", "virus"}


# strict=False accepts the raw line breaks mail transport inserts inside long strings.
_DECODER = json.JSONDecoder(strict=False)


def _load(text: str) -> dict[str, Any] | None:
    # raw_decode stops after the object: SNS appends an unsubscribe footer to the JSON.
    try:
        data, _ = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _notification(text: str) -> dict[str, Any] | None:
    data = _load(text)
    if data is None:
        return None
    message = data.get("Message")
    if isinstance(message, str):
        data = _load(message)
        if data is None:
            return None
    return data


def _dict(value: object) -> dict[str, Any]:
    # The JSON comes from the internet: a field of the wrong type reads as empty.
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _bounce(note: dict[str, Any]) -> list[Finding]:
    bounce = _dict(note.get("bounce"))
    temporary = str(bounce.get("bounceType", "")).lower() == "transient"
    reporting = str(bounce.get("reportingMTA", "")).partition(";")[2].strip()
    findings: list[Finding] = []
    for item in _list(bounce.get("bouncedRecipients"))[:MAX_ITEMS]:
        if not isinstance(item, dict):
            continue
        diagnostic = collapse(str(item.get("diagnosticCode", "")).partition(";")[2] or "")
        status = find_status(str(item.get("status", ""))) or find_status(diagnostic)
        findings.append(
            Finding(
                recipient=clean_address(str(item.get("emailAddress", ""))),
                diagnostic=diagnostic,
                status=status,
                replycode=find_replycode(diagnostic),
                action=str(item.get("action", "")) or ("delayed" if temporary else "failed"),
                reporting_mta=reporting,
                timestamp=str(bounce.get("timestamp", "")),
            )
        )
    return findings


def _complaint(note: dict[str, Any]) -> list[Finding]:
    complaint = _dict(note.get("complaint"))
    feedback = str(complaint.get("complaintFeedbackType", "abuse")).lower()
    return [
        Finding(
            recipient=clean_address(str(item.get("emailAddress", ""))),
            reason="feedback",
            feedback_type=feedback if feedback in FEEDBACK_TYPES else "abuse",
            user_agent=str(complaint.get("userAgent", ""))[:200],
            timestamp=str(complaint.get("timestamp", "")),
        )
        for item in _list(complaint.get("complainedRecipients"))[:MAX_ITEMS]
        if isinstance(item, dict)
    ]


def _delivery(note: dict[str, Any]) -> list[Finding]:
    delivery = _dict(note.get("delivery"))
    response = collapse(str(delivery.get("smtpResponse", "")))
    return [
        Finding(
            recipient=clean_address(str(address)),
            reason="delivered",
            diagnostic=response,
            status=find_status(response),
            replycode=find_replycode(response),
            action="delivered",
            remote_mta=str(delivery.get("remoteMtaIp", "")),
            reporting_mta=str(delivery.get("reportingMTA", "")),
            timestamp=str(delivery.get("timestamp", "")),
        )
        for address in _list(delivery.get("recipients"))[:MAX_ITEMS]
    ]


def detect_amazonses(ctx: Context) -> list[Finding] | None:
    """Findings from an SES notification mail, or None when the body is not one."""
    text = ctx.full_text.strip()
    if not text.startswith("{") or "notificationType" not in text[:MAX_JSON]:
        return None
    note = _notification(text[:MAX_JSON])
    if note is None:
        return None
    kind = str(note.get("notificationType") or note.get("eventType") or "")
    readers = {"Bounce": _bounce, "Complaint": _complaint, "Delivery": _delivery}
    reader = readers.get(kind)
    if reader is None:
        return None
    findings = [f for f in reader(note) if f.recipient]
    return findings or None
