"""Phrases that state `networkerror`: DNS, routing or connection problem on the way."""

from __future__ import annotations

# Phrases that decide before every other reason's table (see FIRST_ORDER).
FIRST: tuple[str, ...] = (
    "malformed or unexpected name server reply",
    "dns query failed",
    "host not found, try again",
)

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    " had no relevant answers.",
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
    "network is unreachable",
    "dns lookup",
    "could not be resolved",
    "mail loop",
    "loop detected",
    "forwarded more than the maximum allowed",
    "routing loop",
    "network error",
    "wasn't able to establish an smtp connection",
    "unable to establish an smtp connection",
)
