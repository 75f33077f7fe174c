"""Phrases that state `norelaying`: the server refused to relay."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "as a relay",
    "email address is not verified.",
    "insecure mail relay",
    "is not permitted to relay through this server without authentication",
    "mail server requires authentication when attempting to send to a non-local e-mail address",
    "no relaying",
    "not a gateway",
    "not allowed to relay through this machine",
    "not an open relay, so get lost",
    "not local host",
    "relay access denied",
    "relay denied",
    "relay not permitted",
    "relaying denied",
    "relaying mail to ",
    "specified domain is not allowed",
    "that domain isn't in my list of allowed rcpthost",
    "this system is not configured to relay mail",
    "unable to relay for",
    "we don't handle mail for",
    "relaying mail not allowed",
    "relaying not allowed",
    "unable to relay",
    "we do not relay",
)
