"""Microsoft (Exchange Online, Outlook.com inbound): the non-delivery report codes Microsoft
documents ("Email non-delivery reports and SMTP errors in Exchange Online")."""

from __future__ import annotations

from typing import Final

from stmails.core.reasons.engine import Evidence

HOSTS: Final[tuple[str, ...]] = (".prod.outlook.com", ".protection.outlook.com")

# (reason, enhanced code, low, high, lowercase text). With low == high the code must equal the
# enhanced code; otherwise it is a prefix ("5.7.") and the code's last number lies in
# [low, high] (Microsoft numbers families of related refusals, e.g. 5.7.606-649).
ERRORS: Final[tuple[tuple[str, str, int, int, str], ...]] = (
    (
        "authfailure",
        "4.7.26",
        0,
        0,
        "must pass either spf or dkim validation, this message is not signed",
    ),
    ("authfailure", "4.7.323", 0, 0, "tlsa-invalid: the domain failed dane validation"),
    ("authfailure", "5.7.323", 0, 0, "tlsa-invalid: the domain failed dane validation"),
    (
        "authfailure",
        "4.7.324",
        0,
        0,
        "dnssec-invalid: destination domain returned invalid dnssec records",
    ),
    (
        "authfailure",
        "5.7.324",
        0,
        0,
        "dnssec-invalid: destination domain returned invalid dnssec records",
    ),
    (
        "authfailure",
        "4.7.325",
        0,
        0,
        "certificate-host-mismatch: remote certificate must have a common name or subject "
        "alternative name matching the hostname (dane)",
    ),
    (
        "authfailure",
        "5.7.325",
        0,
        0,
        "certificate-host-mismatch: remote certificate must have a common name or subject "
        "alternative name matching the hostname (dane)",
    ),
    (
        "authfailure",
        "5.7.23",
        0,
        0,
        "the message was rejected because of sender policy framework violation",
    ),
    (
        "authfailure",
        "5.7.322",
        0,
        0,
        "certificate-expired: destination mail server's certificate is expired",
    ),
    ("authfailure", "5.7.509", 0, 0, "does not pass dmarc verification"),
    ("badreputation", "4.7.650", 0, 0, "has been temporarily rate limited due to ip reputation"),
    ("blocked", "4.4.2", 0, 0, "connection dropped"),
    ("blocked", "4.7.", 850, 899, "access denied, please try again later"),
    ("blocked", "5.7.25", 0, 0, "must have a reverse dns record"),
    ("blocked", "5.7.506", 0, 0, "access denied, bad helo"),
    ("blocked", "5.7.507", 0, 0, "access denied, rejected by recipient"),
    ("blocked", "5.7.510", 0, 0, "does not accept email over ipv6"),
    ("blocked", "5.7.511", 0, 0, "access denied, banned sender"),
    ("blocked", "5.7.513", 0, 0, "using customer block list"),
    ("blocked", "5.7.", 606, 649, "access denied, banned sending ip "),
    ("blocked", "4.7.", 500, 699, "access denied, please try again later"),
    ("blocked", "5.5.4", 0, 0, "invalid domain name"),
    ("blocked", "5.7.51", 0, 0, "restrictdomainstoipaddresses or restrictdomainstocertificate"),
    ("blocked", "5.7.1", 0, 0, "part of their network is on our block list (s3150)"),
    ("contenterror", "5.3.0", 0, 0, "too many related errors"),
    ("contenterror", "5.6.11", 0, 0, "invalid characters"),
    ("contenterror", "5.4.11", 0, 0, "agent generated message depth exceeded"),
    ("contenterror", "5.5.6", 0, 0, "invalid message content"),
    (
        "exceedlimit",
        "5.2.3",
        0,
        0,
        "resolver.rst.recipsizelimit; message too large for this recipient",
    ),
    ("expired", "4.4.1", 0, 0, "connection timed out"),
    ("expired", "4.4.7", 0, 0, "message delayed"),
    ("expired", "4.4.7", 0, 0, "queue expired; message expired"),
    ("expired", "4.4.7", 0, 0, "message expired"),
    ("expired", "5.4.300", 0, 0, "message expired"),
    ("mailboxfull", "5.2.2", 0, 0, "mailbox full"),
    ("mesgtoobig", "5.3.4", 0, 0, "message size exceeds fixed maximum message size"),
    ("mesgtoobig", "5.3.4", 0, 0, "message too big for system"),
    ("networkerror", "5.4.4", 0, 0, "smtpsend.dns.nonexistentdomain; nonexistent domain"),
    ("networkerror", "5.4.6", 0, 0, "hop count exceeded - possible mail loop"),
    ("networkerror", "4.4.316", 0, 0, "connection refused"),
    ("networkerror", "5.4.4", 0, 0, "invalid arguments"),
    ("networkerror", "5.4.6", 0, 0, "routing loop detected"),
    ("networkerror", "5.4.14", 0, 0, "routing loop detected"),
    ("norelaying", "5.7.1", 0, 0, "unable to relay"),
    ("norelaying", "5.7.1", 0, 0, "client was not authenticated"),
    ("norelaying", "5.4.1", 0, 0, "relay access denied"),
    ("norelaying", "5.7.64", 0, 0, "tenantattribution; relay access denied"),
    ("norelaying", "5.4.310", 0, 0, "does not exist"),
    ("notaccept", "4.3.2", 0, 0, "system not accepting network messages"),
    ("notaccept", "4.4.4", 0, 0, "hosted tenant which has no mail-enabled subscriptions"),
    ("notaccept", "5.3.2", 0, 0, "storedrv.deliver: missing or bad storedriver mdb properties"),
    ("policyviolation", "5.0.350", 0, 0, "x-dg-ref header is too long"),
    (
        "policyviolation",
        "5.0.350",
        0,
        0,
        "requested action not taken: policy violation detected (as345)",
    ),
    ("policyviolation", "5.7.", 900, 999, "delivery not authorized, message refused"),
    ("rejected", "5.1.7", 0, 0, "invalid address"),
    ("rejected", "5.1.7", 0, 0, "unknown sender address"),
    ("rejected", "5.1.0", 0, 0, "sender denied"),
    ("rejected", "5.1.8", 0, 0, "access denied, bad outbound sender"),
    ("rejected", "5.7.1", 0, 0, "delivery not authorized"),
    ("rejected", "5.7.12", 0, 0, "sender was not authenticated by organization"),
    ("rejected", "5.7.124", 0, 0, "sender not in allowed-senders list"),
    ("rejected", "5.7.133", 0, 0, "sender not authenticated for group"),
    ("rejected", "5.7.134", 0, 0, "sender was not authenticated for mailbox"),
    ("rejected", "5.7.13", 0, 0, "sender was not authenticated for public folder"),
    ("rejected", "5.7.135", 0, 0, "sender was not authenticated for public folder"),
    ("rejected", "5.7.136", 0, 0, "sender was not authenticated"),
    ("rejected", "5.7.", 501, 503, "access denied, spam abuse detected"),
    (
        "rejected",
        "5.7.512",
        0,
        0,
        "access denied, message must be rfc 5322 section 3.6.2 compliant",
    ),
    (
        "rejected",
        "5.7.750",
        0,
        0,
        "service unavailable. client blocked from sending from unregistered domains",
    ),
    ("rejected", "5.7.", 501, 503, "access denied, banned sender"),
    ("securityerror", "5.7.3", 0, 0, "cannot achieve exchange server authentication"),
    ("securityerror", "5.7.3", 0, 0, "not authorized"),
    ("securityerror", "4.4.317", 0, 0, "starttls is required to send mail"),
    ("securityerror", "5.4.317", 0, 0, "starttls is required to send mail"),
    (
        "securityerror",
        "4.7.321",
        0,
        0,
        "starttls-not-supported: destination mail server must support tls to receive mail",
    ),
    (
        "securityerror",
        "5.7.321",
        0,
        0,
        "starttls-not-supported: destination mail server must support tls to receive mail",
    ),
    ("securityerror", "5.7.1", 0, 0, "client was not authenticated"),
    (
        "securityerror",
        "5.7.57",
        0,
        0,
        "client was not authenticated to send anonymous mail during mail from",
    ),
    ("spamdetected", "5.2.1", 0, 0, "content filter agent quarantined this message"),
    ("speeding", "4.3.2", 0, 0, "storedrv.deliver; recipient thread limit exceeded"),
    (
        "speeding",
        "5.1.90",
        0,
        0,
        "your message can't be sent because you've reached your daily limit for message recipients",
    ),
    ("speeding", "5.2.2", 0, 0, "submission quota exceeded"),
    (
        "speeding",
        "5.2.121",
        0,
        0,
        "recipient's per hour message receive limit from specific sender exceeded",
    ),
    ("speeding", "5.2.122", 0, 0, "recipient's per hour message receive limit exceeded"),
    ("speeding", "5.7.508", 0, 0, "has exceeded permitted limits within"),
    ("speeding", "5.7.", 700, 749, "access denied, tenant has exceeded threshold"),
    ("speeding", "5.7.", 700, 749, "access denied, traffic not accepted from this ip"),
    ("suspend", "5.7.504", 0, 0, "recipient address rejected: access denied"),
    ("suspend", "5.7.505", 0, 0, "access denied, banned recipient"),
    ("suspend", "5.2.1", 0, 0, "mailbox cannot be accessed"),
    ("syntaxerror", "5.3.3", 0, 0, "unrecognized command"),
    ("syntaxerror", "5.5.2", 0, 0, "send hello first"),
    ("systemerror", "4.3.2", 0, 0, "service not available"),
    ("systemerror", "4.3.2", 0, 0, "service not active"),
    ("systemerror", "5.3.5", 0, 0, "system incorrectly configured"),
    (
        "systemerror",
        "5.3.190",
        0,
        0,
        "journaling on-premises messages to microsoft 365 or office 365 not supported when "
        "journaling archive is disabled",
    ),
    ("systemerror", "5.0.0", 0, 0, "helo / ehlo requires domain address"),
    ("systemerror", "5.1.4", 0, 0, "destination mailbox address ambiguous"),
    ("systemerror", "5.2.4", 0, 0, "mailing list expansion problem"),
    ("systemerror", "5.2.14", 0, 0, "misconfigured forwarding address"),
    ("systemerror", "4.4.3", 0, 0, "temporary server error. please try again later attr18"),
    ("systemerror", "4.7.0", 0, 0, "temporary server error. please try again later. prx4 nexthop:"),
    (
        "systemerror",
        "4.4.24",
        0,
        0,
        "message failed to be replicated: insufficient system resource:",
    ),
    (
        "systemerror",
        "4.4.25",
        0,
        0,
        "message failed to be replicated: no healthy secondary server available to accept "
        "replica at this time.",
    ),
    ("systemerror", "4.4.28", 0, 0, "message failed to be replicated: the operation was canceled"),
    ("systemerror", "4.4.318", 0, 0, "(suspiciousremoteservererror)"),
    ("systemerror", "5.4.318", 0, 0, "(suspiciousremoteservererror)"),
    ("systemerror", "4.7.500", 0, 0, "server busy. please try again later from "),
    ("systemerror", "4.7.700", 0, 0, "pfa agent busy, please try again."),
    ("systemfull", "4.3.1", 0, 0, "insufficient system resources"),
    ("toomanyconn", "5.5.3", 0, 0, "too many recipients"),
    ("toomanyconn", "4.5.3", 0, 0, "too many recipients"),
    ("toomanyconn", "5.2.122", 0, 0, "the recipient has exceeded their limit for"),
    ("userunknown", "5.1.1", 0, 0, "resolver.adr.exrecipnotfound; not found"),
    ("userunknown", "5.1.1", 0, 0, "user unknown"),
    ("userunknown", "5.1.3", 0, 0, "storedrv.submit; invalid recipient address"),
    ("userunknown", "5.1.", 4, 5, "recipient address reserved by rfc 2606"),
    ("userunknown", "5.1.6", 0, 0, "recipient addresses in single label domains not accepted"),
    ("userunknown", "5.1.1", 0, 0, "bad destination mailbox address"),
    ("userunknown", "5.1.10", 0, 0, "recipient not found"),
    ("userunknown", "5.4.1", 0, 0, "recipient address rejected: access denied"),
    ("userunknown", "5.5.0", 0, 0, "requested action not taken: mailbox unavailable"),
    ("userunknown", "5.1.2", 0, 0, "invalid x.400 address"),
)


def reason(ev: Evidence) -> str:
    """The reason Microsoft's documented NDR code in the evidence states, or ""."""
    status = ev.status
    if status.count(".") != 2:
        return ""
    text = ev.text.lower()
    last = int(status.rsplit(".", 1)[1]) if status.rsplit(".", 1)[1].isdigit() else -1
    for name, code, low, high, words in ERRORS:
        if low == high:
            if status != code:
                continue
        elif not (status.startswith(code) and low <= last <= high):
            continue
        if words in text:
            return name
    return ""
