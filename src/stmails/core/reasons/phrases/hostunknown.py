"""Phrases that state `hostunknown`: the recipient's domain does not exist or has no mail host."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "domain does not exist",
    "domain is not reachable",
    "domain must exist",
    "host or domain name not found",
    "host unknown",
    "host unreachable",
    "mail domain mentioned in email address is unknown",
    "name or service not known",
    "no such domain",
    "recipient address rejected: unknown domain name",
    "recipient domain must exist",
    "the account or domain may not exist",
    "unknown host",
    "unroutable address",
    "unrouteable address",
    "bad destination system address",
    "domain not found",
    "unknown domain",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (("553 ", " does not exist"),)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "domain name not found",
    "host not found",
    "hostname not found",
)
