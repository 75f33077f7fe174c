"""Phrases that state `requireptr`: the sending IP has no (matching) reverse DNS."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "access denied. ip name lookup failed",
    "all mail servers must have a ptr record with a valid reverse dns entry",
    "bad dns ptr resource record",
    "cannot find your hostname",
    "client host rejected: cannot find your hostname",
    "fix reverse dns for ",
    "ips with missing ptr records",
    "no ptr record found.",
    "please get a custom reverse dns name from your isp for your host",
    "ptr record setup",
    "reverse dns failed",
    "reverse dns required",
    "sender ip reverse lookup rejected",
    "the ip address sending this message does not have a ptr record setup",
    "the corresponding forward dns entry does not point to the sending ip",
    "this system will not accept messages from servers/devices with no reverse dns",
    "unresolvable relay host name",
    "we do not accept mail from hosts with dynamic ip or generic dns ptr-records",
    "cannot resolve your address",
    "does not have a valid ptr",
    "mismatches client ip",
    "no ptr record found",
    "not have a ptr",
    "unverifiable sending ip",
    "unverifyable sending ip",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (
    ("domain ", " mismatches client ip"),
    ("dns lookup failure: ", " try again later"),
    ("reverse dns lookup for host ", " failed permanently"),
    ("server access ", " forbidden by invalid rdns record of your mail server"),
    ("service permits ", " unverifyable sending ips"),
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "dns ptr",
    "hostname lookup",
    "ptr record",
    "reverse dns",
    "reverse lookup",
)
