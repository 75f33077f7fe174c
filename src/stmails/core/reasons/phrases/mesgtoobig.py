"""Phrases that state `mesgtoobig`: the message is larger than the destination accepts."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "exceeded maximum inbound message size",
    "line limit exceeded",
    "max message size exceeded",
    "message file too big",
    "message length exceeds administrative limit",
    "message size exceeds fixed limit",
    "message size exceeds fixed maximum message size",
    "message size exceeds maximum value",
    "message too big",
    "message too large for this ",
    "size limit",
    "taille limite du message atteinte",
    "exceeds the size limit",
    "message exceeds the maximum size",
    "message is too large",
    "message size exceeds",
    "resolver.rst.recipsizelimit",
)
