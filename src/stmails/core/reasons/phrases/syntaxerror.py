"""Phrases that state `syntaxerror`: an SMTP syntax or protocol error."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "syntax error",
    "command unrecognized",
    "unrecognized command",
    "line too long",
    "bad command sequence",
    "command parameter not implemented",
    "parameter not implemented",
)
