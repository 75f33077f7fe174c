"""Phrases that state `hostunknown`: the recipient's domain does not exist or has no mail host."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
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
    "unrouteable mail domain",
    "domain not found",
    "unknown domain",
    "host not found",
    "domain name not found",
    "nxdomain",
    "hostname not found",
    "unrouteable address",
    "bad destination system address",
)
