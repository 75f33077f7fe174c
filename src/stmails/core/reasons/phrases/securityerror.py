"""Phrases that state `securityerror`: an authentication or transport-security requirement
failed."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "account not subscribed to ses",
    "authentication credentials invalid",
    "authentication failure",
    "authentication required",
    "authentication turned on in your email client",
    "executable files are not allowed in compressed files",
    "insecure mail relay",
    "recipient address rejected: access denied",
    "sorry, you don't authenticate or the domain isn't in my list of allowed rcpthosts",
    "starttls is required to send mail",
    "tls required but not supported",
    "unauthenticated senders not allowed",
    "verification failure",
    "you are not authorized to send mail, authentication is required",
    "starttls required",
    "tls required",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (
    ("authentication failed; server ", " said: "),
    ("authentification invalide", "305"),
    ("authentification requise", "402"),
    ("domain ", " is a dead domain"),
    ("user ", " is not authorized to perform ses:sendrawemail on resource"),
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = ("authentication",)
