"""Phrases that state `contenterror`: the message's format or encoding was refused."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "duplicate header",
    "header size exceeds maximum permitted",
    "improper use of 8-bit data in message header",
    "message header size, or recipient list, exceeds policy limit",
    "message mime complexity exceeds the policy maximum",
    "routing loop detected -- too many received: headers",
    "this message contain invalid mime headers",
    "this message contain improperly-formatted binary content",
    "this message contain text that uses unnecessary base64 encoding",
    "headers too large",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "invalid charset",
    "invalid mime",
    "media error",
)
