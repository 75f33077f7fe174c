"""Phrases that state `filtered`: the recipient's own filter or preferences refused it (also: an
"unknown user" said after the address was accepted at RCPT)."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "because the recipient is only accepting mail from specific email addresses",
    "bounced address",
    "due to extended inactivity new mail is not currently being accepted for this mailbox",
    "has restricted sms e-mail",
    "is not accepting any mail",
    "message rejected due to user rules",
    "not found recipient account",
    "refused due to recipient preferences",
    "resolver.rst.notauthorized",
    "this account is protected by",
    "user not found",
    "user refuses to receive this mail",
    "user reject",
    "we failed to deliver mail because the following address recipient id refuse to receive mail",
    "you have been blocked by the recipient",
    "are not accepting mail from",
    "blocked by user's personal filter",
    "due to recipient preferences",
    "due to user preferences",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "rejected by recipient",
    "rejected per recipient",
    "we are not accepting mail from you",
    "filtered by",
)
