"""Phrases that state `hasmoved`: the recipient has moved to another address."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    " has been replaced by ",
    "address has changed",
    "has moved to",
)
