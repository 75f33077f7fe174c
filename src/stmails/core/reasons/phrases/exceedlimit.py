"""Phrases that state `exceedlimit`: the message exceeds a per-recipient limit."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "message header size exceeds limit",
    "message too large",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = ("exceeded the maximum number of",)
