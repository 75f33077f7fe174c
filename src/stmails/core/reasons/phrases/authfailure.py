"""Phrases that state `authfailure`: SPF, DKIM or DMARC checks failed."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "//spf.pobox.com",
    "-- authentication failed",
    "bad spf records for",
    "dmarc policy",
    "please inspect your spf settings",
    "sender policy framework (spf) fail",
    "sender policy framework violation",
    "spf (sender policy framework) domain authentication fail",
    "spf check: fail",
    "sender policy framework",
    "spf fail",
    "spf check failed",
    "failed spf",
    "spf validation failed",
    "dmarc",
    "unauthenticated email",
    "fails to pass authentication checks",
    "does not have authentication information",
)
