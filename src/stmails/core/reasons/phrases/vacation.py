"""Phrases that state `vacation`: an automatic reply saying the recipient is away."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "i am away on vacation",
    "i am away until",
    "i am out of the office",
    "i will be traveling for work on",
)
