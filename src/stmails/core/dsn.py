"""RFC 3464 delivery status notifications: the message/delivery-status part, field by field."""

from __future__ import annotations

from dataclasses import dataclass

from stmails.core.fields import clean_address, collapse, parse_field_lines

MAX_DSN_RECIPIENTS = 500


@dataclass(slots=True)
class DsnRecipient:
    """The per-recipient fields of one DSN block (values as found, diagnostic collapsed)."""

    recipient: str = ""
    original: str = ""
    action: str = ""
    status: str = ""
    diagnostic: str = ""
    diagnostic_type: str = ""
    remote_mta: str = ""
    last_attempt: str = ""
    # The sending MTA's own classification of the failure (PowerMTA), mapped to a reason.
    category_reason: str = ""


@dataclass(slots=True)
class DsnReport:
    """A parsed message/delivery-status body: per-message fields and recipient blocks."""

    reporting_mta: str
    arrival_date: str
    recipients: list[DsnRecipient]


_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")

# PowerMTA adds X-PowerMTA-BounceCategory to each recipient block: its own classification of
# the remote reply, from a documented closed list of categories.
POWERMTA_CATEGORY_REASONS = {
    "bad-domain": "hostunknown",
    "bad-mailbox": "userunknown",
    "inactive-mailbox": "suspend",
    "message-expired": "expired",
    "no-answer-from-host": "networkerror",
    "policy-related": "policyviolation",
    "quota-issues": "mailboxfull",
    "routing-errors": "systemerror",
    "spam-related": "spamdetected",
    "virus-related": "virusdetected",
    "content-related": "contenterror",
    "relaying-issues": "norelaying",
    "invalid-sender": "rejected",
}


def normalize_action(value: str) -> str:
    """One of RFC 3464's actions for an Action field ("deliverable" -> "delivered"), or ""."""
    word = value.strip().lower()
    for action in _ACTIONS:
        if word.startswith(action[:4]):
            return action
    return ""


def _strip_type(value: str) -> str:
    # "dns; mx.example" and "smtp; 550 ..." carry a type prefix that is not part of the value.
    head, sep, rest = value.partition(";")
    if sep and len(head) <= 20 and " " not in head.strip():
        return rest.strip()
    return value.strip()


def parse_delivery_status(text: str) -> DsnReport:
    """Read the fields of a delivery-status body.

    A new recipient block starts at a blank line or at a Final-Recipient/Original-Recipient
    that would otherwise overwrite the current block's (some MTAs omit the blank lines).
    """
    reporting_mta = ""
    arrival = ""
    blocks: list[DsnRecipient] = []
    current: DsnRecipient | None = None
    for name, value in parse_field_lines(text):
        if not name:
            current = None
            continue
        if name == "reporting-mta":
            reporting_mta = _strip_type(value)
            continue
        if name == "arrival-date":
            arrival = value
            continue
        if name in ("final-recipient", "original-recipient", "x-actual-recipient"):
            address = clean_address(_strip_type(value))
            if current is not None and (
                (name == "final-recipient" and current.recipient)
                or (name == "original-recipient" and current.original)
            ):
                current = None
            if current is None:
                if len(blocks) >= MAX_DSN_RECIPIENTS:
                    break
                current = DsnRecipient()
                blocks.append(current)
            if name == "final-recipient":
                current.recipient = address
            elif name == "original-recipient":
                current.original = address
            elif not current.recipient:
                current.recipient = address
            continue
        if current is None:
            if name in ("action", "status", "diagnostic-code", "remote-mta"):
                current = DsnRecipient()
                blocks.append(current)
            else:
                continue
        if name == "action":
            current.action = normalize_action(value)
        elif name == "status":
            current.status = value.split()[0] if value.split() else ""
        elif name == "diagnostic-code":
            head, sep, rest = value.partition(";")
            if sep and len(head) <= 20:
                current.diagnostic_type = head.strip().lower()
                current.diagnostic = collapse(rest)
            else:
                current.diagnostic = collapse(value)
        elif name == "remote-mta":
            current.remote_mta = _strip_type(value)
        elif name == "last-attempt-date":
            current.last_attempt = value
        elif name == "x-powermta-bouncecategory":
            current.category_reason = POWERMTA_CATEGORY_REASONS.get(value.strip().lower(), "")
    return DsnReport(reporting_mta, arrival, [b for b in blocks if b.recipient or b.original])
