"""Phrases that state `toomanyconn`: too many connections or recipients at once."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "all available ips are at maximum connection limit",
    "connection rate limit exceeded",
    "exceeds per-domain connection limit for",
    "has exceeded the max emails per hour ",
    "throttling failure: daily message quota exceeded",
    "throttling failure: maximum sending rate exceeded",
    "too many connections",
    "too many connections from your host",
    "too many concurrent smtp connections",
    "too many errors from your ip",
    "too many recipients for this message",
    "too many smtp sessions for this host",
    "trop de connexions, ",
    "we have already made numerous attempts to deliver this message",
    "too many messages",
    "rate limit",
    "rate limited",
    "connection limit",
    "too many recipients",
)
