"""Phrases that state `systemerror`: an error in the destination system (configuration, loops)."""

from __future__ import annotations

# Phrases that decide before every other reason's table (see FIRST_ORDER).
FIRST: tuple[str, ...] = ("ofr005_505",)

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
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
    "recipient deferred because there is no mdb",
    "remote server is misconfigured",
    "server configuration error",
    "service currently unavailable",
    "system config error",
    "timeout waiting for input",
    "transaction failed ",
    "mail for you will be queued",
    "internal error",
    "system error",
    "configuration error",
    "ldap server",
    "queue file write error",
)
