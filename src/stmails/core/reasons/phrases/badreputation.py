"""Phrases that state `badreputation`: refused because of the sending IP or domain's reputation."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "has been temporarily rate limited due to ip reputation",
    "ip/domain reputation problems",
    "likely suspicious due to the very low reputation",
    "the sending mta's poor reputation",
    "poor reputation",
    "low reputation",
    "sender reputation",
    "bad reputation",
)
