"""Phrases that state `notcompliantrfc`: the message is not RFC 5322 compliant."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "this message is not rfc 5322 compliant",
    "https://support.google.com/mail/?p=rfcmessagenoncompliant",
    "not rfc 5322 compliant",
    "multiple addresses in from",
    "message has been rejected because it does not comply with rfc",
    "not compliant with rfc",
    "missing a valid address in from",
)
