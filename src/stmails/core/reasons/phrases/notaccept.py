"""Phrases that state `notaccept`: the destination accepts no mail at all (null MX, no SMTP
service)."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "does not accept mail (nullmx)",
    "host/domain does not accept mail",
    "host does not accept mail",
    "mail receiving disabled",
    "name server: .: host not found",
    "no mx record found for domain=",
    "no route for current request",
    "smtp protocol returned a permanent error",
    "couldn't find a mail exchanger",
    "domain does not accept mail",
    "indicated no smtp service",
    "not accepting network messages",
    "null mx",
    "this domain does not accept",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "does not accept mail",
    "does not receive email",
    "no mx for",
    "no mx record",
)
