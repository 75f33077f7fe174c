"""Phrases that state `mailererror`: a local delivery program failed."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    " || exit ",
    "procmail: ",
    "bin/procmail",
    "bin/maidrop",
    "command failed: ",
    "command died with status ",
    "command output:",
    "mailer error",
    "pipe to |/",
    "x-unix; ",
    "command died with status",
    "pipe to |",
    "unknown mailer error",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = ("exit status ",)
