"""Phrases that state `virusdetected`: the content carried a virus or malware."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "it has a potentially executable attachment",
    "the message was rejected because it contains prohibited virus or spam content",
    "this form of attachment has been used by recent viruses or other malware",
    "virus detected",
    "virus phishing/malicious_url detected",
    "your message was infected with a virus",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "infected",
    "malware",
    "virus",
)
