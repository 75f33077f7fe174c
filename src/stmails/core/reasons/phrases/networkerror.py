"""Phrases that state `networkerror`: DNS, routing or connection problem on the way."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "could not connect and send the mail to",
    "dns records for the destination computer could not be found",
    "hop count exceeded - possible mail loop",
    "host is unreachable",
    "host name lookup failure",
    "host not found, try again",
    "mail forwarding loop for ",
    "malformed name server reply",
    "malformed or unexpected name server reply",
    "maximum forwarding loop count exceeded",
    "message looping",
    "message probably in a routing loop",
    "no route to host",
    "too many hops",
    "unable to resolve route ",
    "unrouteable mail domain",
    " had no relevant answers.",
    "dns query failed",
    "forwarded more than the maximum allowed",
    "loop detected",
    "network is unreachable",
    "routing loop",
    "unable to establish an smtp connection",
    "wasn't able to establish an smtp connection",
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "could not be resolved",
    "dns lookup",
    "mail loop",
    "network error",
)
