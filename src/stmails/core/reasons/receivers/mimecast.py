"""Mimecast: the rejection texts its knowledge base documents, each with the reply code it
comes with."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence

HOSTS: Final[tuple[str, ...]] = (".mimecast.com",)

# (reason, reply code, lowercase text).
ERRORS: Final[tuple[tuple[str, str, str], ...]] = (
    ("authfailure", "550", "spf sender invalid - envelope rejected"),
    ("authfailure", "550", "dkim sender invalid - envelope rejected"),
    ("authfailure", "550", "dmarc sender invalid - envelope rejected"),
    ("badreputation", "451", "internal resources are temporarily unavailable"),
    ("badreputation", "550", "local ct ip reputation - (reject)"),
    ("blocked", "421", "sender address blocked"),
    ("blocked", "451", "recipient temporarily unavailable"),
    ("blocked", "451", "ip temporarily blacklisted"),
    ("expired", "550", "journal messages past the expiration"),
    ("mesgtoobig", "554", "maximum email size exceeded"),
    ("networkerror", "451", "the incorrect hostname used for inbounds"),
    ("networkerror", "550", "the incorrect hostname used for inbounds"),
    ("networkerror", "554", "mail loop detected"),
    ("norelaying", "451", "open relay not allowed"),
    ("norelaying", "451", "open relay is not allowed"),
    ("notaccept", "451", "account inbounds disabled"),
    ("onhold", "451", "account outbounds disabled"),
    ("onhold", "451", "hostname is not authorized"),
    ("onhold", "550", "journal message past expiration"),
    ("policyviolation", "550", "anti-spoofing policy - inbound not allowed"),
    ("policyviolation", "550", "rejected by header-based anti-spoofing policy"),
    ("policyviolation", "550", "message bounced due to content examination policy"),
    ("policyviolation", "554", "host network not allowed"),
    ("policyviolation", "554", "host network, not allowed"),
    ("rejected", "550", "administrative prohibition envelope blocked"),
    ("rejected", "550", "envelope blocked - user entry"),
    ("rejected", "550", "envelope blocked - user domain entry"),
    (
        "rejected",
        "550",
        "rejected by header-based manually blocked senders - block for manual block",
    ),
    ("rejected", "550", "rejected by header-based blocked senders - block policy for header from"),
    ("rejected", "550", "envelope rejected - block policy for envelope from address"),
    ("securityerror", "535", "incorrect authentication data"),
    ("securityerror", "550", "submitter failed to disabled"),
    ("securityerror", "550", "submitter failed to authenticate"),
    ("securityerror", "553", "this route requires encryption (tls)"),
    ("securityerror", "553", "this route requires tls version 1.2 or greater"),
    ("securityerror", "553", "this route requires high-strength ciphers"),
    ("securityerror", "554", "configuration is invalid for this certificate"),
    ("systemerror", "451", "unable to process connection at this time"),
    ("systemerror", "451", "message ended early"),
    ("systemerror", "451", "unable to process command"),
    ("systemerror", "451", "unable to process an email at this time"),
    ("toomanyconn", "451", "account service is temporarily unavailable"),
    ("toomanyconn", "452", "too many recipients"),
    ("toomanyconn", "550", "exceeding outbound thread limit"),
    ("userunknown", "501", "invalid address"),
    ("userunknown", "503", "user unknown"),
    ("userunknown", "550", "invalid recipient"),
    ("virusdetected", "554", "email rejected due to security policies"),
)


def reason(ev: Evidence) -> str:
    """The reason Mimecast's documented rejection in the evidence states, or ""."""
    if len(ev.replycode) != 3:
        return ""
    text = ev.text.lower()
    for name, code, words in ERRORS:
        if code == ev.replycode and words in text:
            return name
    return ""
