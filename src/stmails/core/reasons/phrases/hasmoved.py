"""Phrases that state `hasmoved`: the recipient has moved to another address."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    " has been replaced by ",
    "address has changed",
    "has moved to",
)
