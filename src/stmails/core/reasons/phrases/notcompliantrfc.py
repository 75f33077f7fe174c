"""Phrases that state `notcompliantrfc`: the message is not RFC 5322 compliant."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "this message is not rfc 5322 compliant",
    "https://support.google.com/mail/?p=rfcmessagenoncompliant",
    "message has been rejected because it does not comply with rfc",
    "missing a valid address in from",
    "multiple addresses in from",
    "not compliant with rfc",
    "not rfc 5322 compliant",
)
