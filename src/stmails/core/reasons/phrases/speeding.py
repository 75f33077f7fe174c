"""Phrases that state `speeding`: sending too fast for the destination."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "mail sent from your ip address has been temporarily rate limited",
    "please try again slower",
    "receiving mail at a rate that prevents additional messages from being delivered",
    "receiving mail at a rate that prevents additional messages",
)
