"""Phrases that state `contenterror`: the message's format or encoding was refused."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "headers too large",
    "improper use of 8-bit data in message header",
    "message header size, or recipient list, exceeds policy limit",
    "message mime complexity exceeds the policy maximum",
    "routing loop detected -- too many received: headers",
    "this message contain invalid mime headers",
    "this message contain improperly-formatted binary content",
    "this message contain text that uses unnecessary base64 encoding",
    "invalid mime",
    "media error",
    "duplicate header",
    "invalid charset",
)
