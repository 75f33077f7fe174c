"""Phrases that state `badreputation`: refused because of the sending IP or domain's reputation."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "a poor email reputation score",
    "has been temporarily rate limited due to ip reputation",
    "ip/domain reputation problems",
    "likely suspicious due to the very low reputation",
    "none/bad reputation",
    "temporarily deferred due to unexpected volume or user complaints",
    "the sending mta's poor reputation",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "bad reputation",
    "low reputation",
    "poor reputation",
    "sender reputation",
)
