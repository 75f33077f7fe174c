"""Phrases that state `mesgtoobig`: the message is larger than the destination accepts."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "exceeded maximum inbound message size",
    "line limit exceeded",
    "max message size exceeded",
    "message file too big",
    "message length exceeds administrative limit",
    "message size exceeds fixed limit",
    "message size exceeds fixed maximum message size",
    "message size exceeds maximum value",
    "message too big",
    "message too large",
    "size limit",
    "taille limite du message atteinte",
    "message exceeds the maximum size",
    "message is too large",
    "message size exceeds",
    "exceeds the size limit",
    "resolver.rst.recipsizelimit",
)
