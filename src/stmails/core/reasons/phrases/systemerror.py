"""Phrases that state `systemerror`: an error in the destination system (configuration, loops)."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "aliasing/forwarding loop broken",
    "can't create user output file",
    "could not load drd for domain",
    "internal error reading data",
    "internal server error: operation now in progress",
    "interrupted system call",
    "it encountered an error while being processed",
    "it would create a mail loop",
    "local configuration error",
    "local error in processing",
    "loop was found in the mail exchanger",
    "loops back to myself",
    "mail system configuration error",
    "queue file write error",
    "recipient deferred because there is no mdb",
    "remote server is misconfigured",
    "server configuration error",
    "service currently unavailable",
    "system config error",
    "temporary local problem",
    "timeout waiting for input",
    "transaction failed ",
    "system error",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "configuration error",
    "internal error",
    "ldap server",
    "mail for you will be queued",
)
