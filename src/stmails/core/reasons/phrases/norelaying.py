"""Phrases that state `norelaying`: the server refused to relay."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "as a relay",
    "insecure mail relay",
    "is not permitted to relay through this server without authentication",
    "requires authentication when attempting to send to a non-local e-mail address",
    "no relaying",
    "not a gateway",
    "not allowed to relay through this machine",
    "not an open relay, so get lost",
    "not local host",
    "relay access denied",
    "relay denied",
    "relaying mail to ",
    "relaying denied",
    "relaying mail not allowed",
    "relay not permitted",
    "relaying not allowed",
    "this system is not configured to relay mail",
    "unable to relay",
    "we don't handle mail for",
    "we do not relay",
)
