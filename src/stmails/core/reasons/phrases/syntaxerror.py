"""Phrases that state `syntaxerror`: an SMTP syntax or protocol error."""

from __future__ import annotations

from typing import Final

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "syntax error",
    "command unrecognized",
    "unrecognized command",
    "line too long",
    "bad command sequence",
    "command parameter not implemented",
    "parameter not implemented",
)
