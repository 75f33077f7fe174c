"""Phrases that state `virusdetected`: the content carried a virus or malware."""

from __future__ import annotations

# Phrases that decide before every other reason's table (see FIRST_ORDER).
FIRST: tuple[str, ...] = ("email rejected due to security policies",)

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "it has a potentially executable attachment",
    "the message was rejected because it contains prohibited virus or spam content",
    "this form of attachment has been used by recent viruses or other malware",
    "virus detected",
    "virus phishing/malicious_url detected",
    "your message was infected with a virus",
    "virus",
    "malware",
    "infected",
)
