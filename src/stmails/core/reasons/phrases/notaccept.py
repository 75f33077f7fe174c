"""Phrases that state `notaccept`: the destination accepts no mail at all (null MX, no SMTP
service)."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "does not accept mail",
    "domain does not accept mail",
    "host does not accept mail",
    "mail receiving disabled",
    "name server: .: host not found",
    "no mx for",
    "null mx",
    "does not receive email",
    "this domain does not accept",
    "not accepting network messages",
    "indicated no smtp service",
    "no mx record",
    "couldn't find a mail exchanger",
)
