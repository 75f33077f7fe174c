"""Phrases that state `suspend`: the mailbox exists but is disabled or suspended."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    " is currently suspended",
    " temporary locked",
    "archived recipient",
    "boite du destinataire archivee",
    "email account that you tried to reach is disabled",
    "has been suspended",
    "inactive account",
    "invalid/inactive user",
    "is a deactivated mailbox",
    "is unavailable: user is terminated",
    "mailbox currently suspended",
    "mailbox disabled",
    "mailbox is frozen",
    "mailbox unavailable or access denied",
    "recipient rejected: temporarily inactive",
    "recipient suspend the service",
    "this account has been disabled or discontinued",
    "this account has been temporarily suspended",
    "this address no longer accepts mail",
    "this mailbox is disabled",
    "user or domain is disabled",
    "user suspended",
    "vdelivermail: account is locked email bounced",
    "550 5.2.1 the email account that you tried to reach is disabled",
    "account disabled",
    "account expired",
    "account has been disabled",
    "account has been suspended",
    "account is disabled",
    "account is inactive",
    "account is locked",
    "account is not active",
    "account is suspended",
    "account suspended",
    "address is inactive",
    "mailbox has been disabled",
    "user account is expired",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = ("is disabled",)
