"""Phrases that state `requireptr`: the sending IP has no (matching) reverse DNS."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "access denied. ip name lookup failed",
    "all mail servers must have a ptr record with a valid reverse dns entry",
    "bad dns ptr resource record",
    "cannot find your hostname",
    "client host rejected: cannot find your hostname",
    "fix reverse dns for ",
    "ips with missing ptr records",
    "no ptr record found",
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
    "reverse lookup",
    "reverse dns",
    "ptr record",
    "not have a ptr",
    "dns ptr",
    "does not have a valid ptr",
    "hostname lookup",
    "cannot resolve your address",
    "unverifyable sending ip",
    "unverifiable sending ip",
    "mismatches client ip",
)
