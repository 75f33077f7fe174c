"""Phrases that state `authfailure`: SPF, DKIM or DMARC checks failed."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "//spf.pobox.com",
    "bad spf records for",
    "dmarc policy",
    "please inspect your spf settings",
    "sender policy framework (spf) fail",
    "sender policy framework violation",
    "spf (sender policy framework) domain authentication fail",
    "spf check: fail",
    "does not have authentication information",
    "failed spf",
    "fails to pass authentication checks",
    "spf check failed",
    "spf fail",
    "spf validation failed",
    "dmarc check failed",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (
    (" is not allowed to send mail.", "_401"),
    ("is not allowed to send from <", " per it's spf record"),
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "-- authentication failed",
    "dmarc",
    "sender policy framework",
    "unauthenticated email",
)
