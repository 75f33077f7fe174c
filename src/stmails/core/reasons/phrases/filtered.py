"""Phrases that state `filtered`: the recipient's own filter or preferences refused it (also: an
"unknown user" said after the address was accepted at RCPT)."""

from __future__ import annotations

# Phrases that decide before every other reason's table (see FIRST_ORDER).
FIRST: tuple[str, ...] = (
    "550 : user unknown",
    ": : user unknown",
)

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "because the recipient is not accepting mail with attachments",
    "because the recipient is not accepting mail with embedded images",
    "blocked by policy: no spam please",
    "blocked by user's personal filter",
    "due to recipient preferences",
    "due to user preferences",
    "has restricted sms e-mail",
    "is not accepting any mail",
    "message filtered",
    "message rejected due to user rules",
    "not found recipient account",
    "refused due to recipient preferences",
    "rejected by recipient",
    "user refuses to receive this mail",
    "user reject",
    "we are not accepting mail from you",
    "you have been blocked by the recipient",
    "this account is protected by",
    "filtered by",
    "rejected per recipient",
)
