"""Phrases that state `policyviolation`: the content breaks the destination's policy."""

from __future__ import annotations

# Lowercase fragments of the whitespace-collapsed diagnostic, in the table's order.
PHRASES: tuple[str, ...] = (
    "an illegal attachment on your message",
    "because the recipient is not accepting mail with attachments",
    "because the recipient is not accepting mail with embedded images",
    "by the content filter",
    "contains an attachment type",
    "email not accepted for policy reasons",
    "email rejected due to security policies",
    "message contains an unacceptable attachment",
    "message does not comply",
    "message rejected for policy reasons",
    "message rejected due to local policy",
    "messages with multiple addresses",
    "rejected for policy reasons",
    "protocol violation",
    "the message was rejected by organization policy",
    "this message has been blocked because it contains",
    "this message was blocked because its content presents a potential",
    "we do not accept messages containing images or other attachments",
    "you're using a mass mailer",
    "policy violation",
    "policy reasons",
    "local policy",
    "organization policy",
    "against policy",
    "policy",
)
