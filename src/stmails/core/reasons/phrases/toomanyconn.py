"""Phrases that state `toomanyconn`: too many connections or recipients at once."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "all available ips are at maximum connection limit",
    "connection rate limit exceeded",
    "exceeds per-domain connection limit for",
    "has exceeded the max emails per hour ",
    "throttling failure: daily message quota exceeded",
    "throttling failure: maximum sending rate exceeded",
    "too many connections",
    "too many connections from your host.",
    "too many concurrent smtp connections",
    "too many errors from your ip",
    "too many recipients",
    "too many smtp sessions for this host",
    "trop de connexions, ",
    "we have already made numerous attempts to deliver this message",
    "too many connections from your host",
    "resolver.adr.reciplimit",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "connection limit",
    "rate limit",
    "rate limited",
    "too many messages",
)
