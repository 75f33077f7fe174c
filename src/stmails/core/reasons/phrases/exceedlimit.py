"""Phrases that state `exceedlimit`: the message exceeds a per-recipient limit."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "message too large for this mailbox",
    "recipient address rejected: too many recipients",
    "exceeded the rate limit",
    "exceeded the maximum number of",
    "resolver.adr.reciplimit",
)
