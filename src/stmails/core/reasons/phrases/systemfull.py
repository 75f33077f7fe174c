"""Phrases that state `systemfull`: the destination system is out of storage."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "mail system full",
    "requested mail action aborted: exceeded storage allocation",
    "insufficient system storage",
)
