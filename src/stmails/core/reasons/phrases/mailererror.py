"""Phrases that state `mailererror`: a local delivery program failed."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "x-unix; ",
    "command died with status",
    "command failed: ",
    "exit status ",
    "mailer error",
    "pipe to |",
    "procmail: ",
    "bin/procmail",
    "unknown mailer error",
    "mailer error",
)
