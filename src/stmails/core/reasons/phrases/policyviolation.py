"""Phrases that state `policyviolation`: the content breaks the destination's policy."""

from __future__ import annotations

from typing import Final

# Lowercase fragments of the diagnostic (whitespace collapsed); any one states the reason.
PHRASES: Final[tuple[str, ...]] = (
    "an illegal attachment on your message",
    "because the recipient is not accepting mail with ",
    "by non-member to a members-only list",
    "closed mailing list",
    "denied by policy",
    "email not accepted for policy reasons",
    "email rejected due to security policies",
    "header are not accepted",
    "header error",
    "local policy violation",
    "message bounced due to organizational settings",
    "message given low priority",
    "message not accepted for policy reasons",
    "message rejected due to local policy",
    "messages with multiple addresses",
    "rejected for policy reasons",
    "protocol violation",
    "the email address used to send your message is not subscribed to this group",
    "the message was rejected by organization policy",
    "this message was blocked because its content presents a potential",
    "we do not accept messages containing images or other attachments",
    "you're using a mass mailer",
    "message contains an unacceptable attachment",
    "this message has been blocked because it contains",
)

# Fragments that state the reason when they all occur, in this order.
SEQUENCES: Final[tuple[tuple[str, ...], ...]] = (
    ("you have exceeded the", "allowable number of posts without solving a captcha"),
)

# Broad words, consulted only when no table states any reason.
LOOSE: Final[tuple[str, ...]] = (
    "against policy",
    "by the content filter",
    "contains an attachment type",
    "local policy",
    "message does not comply",
    "organization policy",
    "policy",
    "policy reasons",
    "policy violation",
)
