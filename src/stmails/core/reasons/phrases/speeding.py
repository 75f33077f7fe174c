"""Phrases that state `speeding`: sending too fast for the destination."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "please try again slower",
    "receiving mail at a rate that prevents additional messages",
)
