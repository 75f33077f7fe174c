"""Phrases that state `systemfull`: the destination system is out of storage."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "mail system full",
    "mail receiving disabled",
    "insufficient system storage",
)
