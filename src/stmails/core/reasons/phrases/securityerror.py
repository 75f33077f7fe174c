"""Phrases that state `securityerror`: an authentication or transport-security requirement
failed."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "account not subscribed to ses",
    "authentication credentials invalid",
    "authentication failure",
    "authentication required",
    "authentication turned on in your email client",
    "executable files are not allowed in compressed files",
    "insecure mail relay",
    "sorry, you don't authenticate or the domain isn't in my list of allowed rcpthosts",
    "tls required but not supported",
    "unauthenticated senders not allowed",
    "verification failure",
    "you are not authorized to send mail, authentication is required",
    "authentication",
    "tls required",
    "starttls required",
)
