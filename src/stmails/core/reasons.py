"""The closed reason vocabulary and the rules that pick one reason for a failure.

A reason comes from three pieces of evidence: the remote server's words (the diagnostic text),
the RFC 3463 enhanced status code and the SMTP reply code. The text is the most specific, so the
pattern tables below are consulted first; the status-code table decides when the text says
nothing known; the reply-code class is the last resort. The tables are data: to teach stmails a
new phrasing, add a lowercase fragment to the right reason's tuple.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

# Sisimai's vocabulary plus the three non-failure kinds (delivered, feedback, vacation).
REASONS: Final[frozenset[str]] = frozenset(
    {
        "authfailure",
        "badreputation",
        "blocked",
        "contenterror",
        "delivered",
        "exceedlimit",
        "expired",
        "feedback",
        "filtered",
        "hasmoved",
        "hostunknown",
        "mailboxfull",
        "mailererror",
        "mesgtoobig",
        "networkerror",
        "norelaying",
        "notaccept",
        "notcompliantrfc",
        "onhold",
        "policyviolation",
        "rejected",
        "requireptr",
        "securityerror",
        "spamdetected",
        "speeding",
        "suspend",
        "syntaxerror",
        "systemerror",
        "systemfull",
        "toomanyconn",
        "undefined",
        "userunknown",
        "vacation",
        "virusdetected",
    }
)

# Reasons that say the address itself is bad (a hard bounce when the failure is permanent).
HARD_REASONS: Final[frozenset[str]] = frozenset(
    {"userunknown", "hostunknown", "hasmoved", "notaccept"}
)

# Reasons that are not delivery failures at all.
NON_FAILURE_REASONS: Final[frozenset[str]] = frozenset({"delivered", "feedback", "vacation"})

# Enhanced status codes (RFC 3463 and the registry's later additions) that name their reason.
STATUS_REASONS: Final[dict[str, str]] = {
    "2.1.5": "delivered",
    "2.0.0": "delivered",
    "4.1.6": "hasmoved",
    "4.1.7": "rejected",
    "4.1.8": "rejected",
    "4.1.9": "systemerror",
    "4.2.1": "suspend",
    "4.2.2": "mailboxfull",
    "4.2.3": "exceedlimit",
    "4.2.4": "systemerror",
    "4.3.1": "systemfull",
    "4.3.2": "systemerror",
    "4.3.4": "mesgtoobig",
    "4.3.5": "systemerror",
    "4.4.1": "expired",
    "4.4.2": "networkerror",
    "4.4.3": "systemerror",
    "4.4.4": "hostunknown",
    "4.4.5": "systemfull",
    "4.4.6": "networkerror",
    "4.4.7": "expired",
    "4.5.3": "syntaxerror",
    "4.5.5": "systemerror",
    "4.7.25": "requireptr",
    "5.1.0": "userunknown",
    "5.1.1": "userunknown",
    "5.1.2": "hostunknown",
    "5.1.3": "userunknown",
    "5.1.4": "systemerror",
    "5.1.6": "hasmoved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.9": "systemerror",
    "5.1.10": "notaccept",
    "5.2.1": "suspend",
    "5.2.2": "mailboxfull",
    "5.2.3": "exceedlimit",
    "5.2.4": "systemerror",
    "5.3.0": "systemerror",
    "5.3.1": "systemfull",
    "5.3.2": "notaccept",
    "5.3.4": "mesgtoobig",
    "5.3.5": "systemerror",
    "5.4.0": "networkerror",
    "5.4.1": "userunknown",
    "5.4.3": "systemerror",
    "5.4.4": "hostunknown",
    "5.4.6": "networkerror",
    "5.4.7": "expired",
    "5.4.8": "networkerror",
    "5.5.3": "exceedlimit",
    "5.5.4": "syntaxerror",
    "5.5.6": "syntaxerror",
    "5.6.0": "contenterror",
    "5.6.1": "contenterror",
    "5.6.2": "contenterror",
    "5.6.3": "contenterror",
    "5.6.5": "contenterror",
    "5.6.7": "contenterror",
    "5.6.9": "contenterror",
    "5.7.0": "securityerror",
    "5.7.1": "rejected",
    "5.7.2": "securityerror",
    "5.7.4": "securityerror",
    "5.7.5": "securityerror",
    "5.7.6": "securityerror",
    "5.7.7": "securityerror",
    "5.7.8": "authfailure",
    "5.7.9": "securityerror",
    "5.7.13": "suspend",
    "5.7.17": "suspend",
    "5.7.18": "suspend",
    "5.7.20": "authfailure",
    "5.7.21": "authfailure",
    "5.7.22": "authfailure",
    "5.7.23": "authfailure",
    "5.7.24": "authfailure",
    "5.7.25": "requireptr",
    "5.7.26": "authfailure",
    "5.7.27": "notaccept",
    "5.7.28": "blocked",
}

# Status codes whose meaning is precise enough that free text does not override them, except
# with the reasons listed for each (e.g. a 5.1.1 sent for a full mailbox by a sloppy server).
STATUS_OVERRIDABLE_BY: Final[dict[str, frozenset[str]]] = {
    "5.1.2": frozenset({"networkerror", "notaccept"}),
    "5.1.7": frozenset(),
    "5.6.0": frozenset(),
    "5.6.1": frozenset(),
    "5.6.2": frozenset(),
    "5.6.3": frozenset(),
    "5.1.8": frozenset(),
    "5.3.2": frozenset(),
    "5.1.1": frozenset(
        {"norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept", "filtered"}
    ),
    "5.2.2": frozenset(),
    "4.2.2": frozenset(),
    "5.1.6": frozenset(),
    "5.2.3": frozenset(),
    "5.3.4": frozenset(),
    "5.7.26": frozenset(),
    "5.7.25": frozenset(),
}

# Reasons a status code cannot settle on its own: servers use these codes loosely, so the
# diagnostic text is consulted first. Any other reason named by a status code is decisive.
TEXT_FIRST_REASONS: Final[frozenset[str]] = frozenset(
    {
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "expired",
        "suspend",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)
# 5.7.1 ("delivery not authorized") and 5.1.10 (null MX, also Microsoft's "recipient not
# found") are used for too many different refusals to decide anything.
DECISIVE_STATUSES: Final[frozenset[str]] = frozenset(
    code
    for code, reason in STATUS_REASONS.items()
    if reason not in TEXT_FIRST_REASONS and code not in ("5.7.1", "5.1.10")
)

# Diagnostic fragments per reason, in precedence order: the first reason with a match wins.
# Fragments are lowercase substrings of the whitespace-collapsed, lowercased diagnostic text.
REASON_PHRASES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    # Transient resolver errors read like unknown hosts; block lists name spam in their URLs;
    # "550 : User unknown" with the address left out is how au/KDDI report a recipient's
    # domain filter.
    (
        "filtered",
        ("550 : user unknown", ": : user unknown"),
    ),
    # Orange (France Telecom) error codes: OFR_506 is its spam refusal, OFR005_505 an
    # internal fault.
    ("spamdetected", ("ofr_506",)),
    ("systemerror", ("ofr005_505",)),
    # Yahoo's TSS04 deferral: the sender's mail drew complaints; Yahoo refuses the sender.
    ("rejected", ("[tss04]", "unexpected volume or user complaints")),
    # Mimecast's documented wording for a virus signature (or a spam score over its limit).
    ("virusdetected", ("email rejected due to security policies",)),
    (
        "blocked",
        (
            "blocked using ",
            "spamhaus",
            "spamcop.net/bl",
            "dnsbl",
            " rbl ",
            "refused to talk to me",
        ),
    ),
    (
        "networkerror",
        (
            "malformed or unexpected name server reply",
            "dns query failed",
            "host not found, try again",
        ),
    ),
    (
        "mailboxfull",
        (
            "account disabled temporarly for exceeding receiving limits",
            "account is exceeding their quota",
            "account is over quota",
            "account is temporarily over quota",
            "boite du destinataire pleine",
            "delivery failed: over quota",
            "disc quota exceeded",
            "does not have enough space",
            "exceeded storage allocation",
            "exceeding its mailbox quota",
            "full mailbox",
            "is over disk quota",
            "is over quota",
            "is over the maximum allowed quota",
            "mail file size exceeds the maximum size allowed for mail delivery",
            "mail quota exceeded",
            "mailbox exceeded the local limit",
            "mailbox full",
            "mailbox has exceeded its disk space limit",
            "mailbox is full",
            "mailbox over quota",
            "mailbox quota usage exceeded",
            "mailbox size limit exceeded",
            "maildir over quota",
            "maildir delivery failed: userdisk quota ",
            "maildir delivery failed: domaindisk quota ",
            "mailfolder is full",
            "no space left on device",
            "not enough disk space",
            "not enough storage space in",
            "not sufficient disk space",
            "over the allowed quota",
            "quota exceeded",
            "quota violation for",
            "recipient reached disk quota",
            "recipient rejected: mailbox would exceed maximum allowed storage",
            "the recipient mailbox has exceeded its disk space limit",
            "the user's space has been used up",
            "the user you are trying to reach is over quota",
            "too much mail data",
            "user has exceeded quota, bouncing mail",
            "user has too many messages on the server",
            "user is over quota",
            "user is over the quota",
            "user over quota",
            "user over limit",
            "user's disk quota exceeded",
            "user: mailbox is full",
            "would be over the allowed quota",
            "insufficient disk space",
            "exceeds mailbox quota",
            "mailbox exceeds allowed size",
            "out of storage",
            "has exceeded their storage quota",
            "quotaexceededexception",
            "out of storage space",
        ),
    ),
    (
        "mesgtoobig",
        (
            "exceeded maximum inbound message size",
            "line limit exceeded",
            "max message size exceeded",
            "message file too big",
            "message length exceeds administrative limit",
            "message size exceeds fixed limit",
            "message size exceeds fixed maximum message size",
            "message size exceeds maximum value",
            "message too big",
            "message too large",
            "size limit",
            "taille limite du message atteinte",
            "message exceeds the maximum size",
            "message is too large",
            "message size exceeds",
            "exceeds the size limit",
            "resolver.rst.recipsizelimit",
        ),
    ),
    (
        "exceedlimit",
        (
            "message too large for this mailbox",
            "recipient address rejected: too many recipients",
            "exceeded the rate limit",
            "exceeded the maximum number of",
            "resolver.adr.reciplimit",
        ),
    ),
    (
        "suspend",
        (
            "550 5.2.1 the email account that you tried to reach is disabled",
            "account disabled",
            "account has been disabled",
            "account has been suspended",
            "account is disabled",
            "account is inactive",
            "account is not active",
            "account is locked",
            "account is suspended",
            "account suspended",
            "address is inactive",
            "boite du destinataire archivee",
            "email account that you tried to reach is disabled",
            "invalid/inactive user",
            "is a deactivated mailbox",
            "is unavailable: user is terminated",
            "mailbox currently suspended",
            "mailbox disabled",
            "mailbox is frozen",
            "mailbox unavailable or access denied",
            "recipient rejected: temporarily inactive",
            "recipient suspend the service",
            "this account has been disabled or discontinued",
            "this account has been temporarily suspended",
            "this address no longer accepts mail",
            "this mailbox is disabled",
            "user or domain is disabled",
            "user suspended",
            "vdelivermail: account is locked email bounced",
            "has been suspended",
            "mailbox is inactive",
            "mailbox has been disabled",
            "user account is expired",
            "account expired",
            "is disabled",
        ),
    ),
    (
        "hasmoved",
        (" has been replaced by ", "address has changed", "has moved to"),
    ),
    (
        "norelaying",
        (
            "as a relay",
            "insecure mail relay",
            "is not permitted to relay through this server without authentication",
            "requires authentication when attempting to send to a non-local e-mail address",
            "no relaying",
            "not a gateway",
            "not allowed to relay through this machine",
            "not an open relay, so get lost",
            "not local host",
            "relay access denied",
            "relay denied",
            "relaying mail to ",
            "relaying denied",
            "relaying mail not allowed",
            "relay not permitted",
            "relaying not allowed",
            "this system is not configured to relay mail",
            "unable to relay",
            "we don't handle mail for",
            "we do not relay",
        ),
    ),
    (
        "authfailure",
        (
            "//spf.pobox.com",
            "-- authentication failed",
            "bad spf records for",
            "dmarc policy",
            "please inspect your spf settings",
            "sender policy framework (spf) fail",
            "sender policy framework violation",
            "spf (sender policy framework) domain authentication fail",
            "spf check: fail",
            "sender policy framework",
            "spf fail",
            "spf check failed",
            "failed spf",
            "spf validation failed",
            "dmarc",
            "unauthenticated email",
            "fails to pass authentication checks",
            "does not have authentication information",
        ),
    ),
    (
        "userunknown",
        (
            "#5.1.1 bad address",
            "550 user unknown",
            "550 unknown user",
            "account has been deleted",
            "account does not exist",
            "account not found",
            "account unknown",
            "address does not exist",
            "address invalid",
            "address is unknown",
            "address not present in directory",
            "address unknown",
            "adresse d au moins un destinataire invalide",
            "adresse inexistante",
            "bad address ",
            "bad destination mailbox address",
            "destination addresses were unknown",
            "destination server rejected recipients",
            "email address does not exist",
            "email address could not be found",
            "invalid address",
            "invalid mailbox",
            "invalid mailbox path",
            "invalid recipient",
            "is not a known user",
            "is not a valid mailbox",
            "is not an active address at this host",
            "mailbox does not exist",
            "mailbox invalid",
            "mailbox is inactive",
            "mailbox not present",
            "mailbox not found",
            "mailbox unavailable",
            "nessun utente simile in questo indirizzo",
            "no account by that name here",
            "no existe dicha persona",
            "no existe ese usuario ",
            "no mail box available for this user",
            "no mailbox by that name is currently available",
            "no mailbox found",
            "no such address here",
            "no such mailbox",
            "no such person at this address",
            "no such recipient",
            "no such user",
            "no thank you rejected: account unavailable",
            "no valid recipients, bye",
            "not a valid recipient",
            "not a valid user here",
            "not a local address",
            "not email addresses",
            "recipient address rejected. (in reply to rcpt to command)",
            "recipient address rejected: invalid user",
            "recipient address rejected: invalid-recipient",
            "recipient address rejected: unknown user",
            "recipient address rejected: userunknown",
            "recipient does not exist",
            "recipient is not accepted",
            "recipient is not local",
            "recipient not exist",
            "recipient not found",
            "recipient not ok",
            "recipient refuses to accept your mail",
            "recipient unknown",
            "requested action not taken: mailbox unavailable",
            "resolver.adr.recipientnotfound",
            "resolver.adr.recipnotfound",
            "resolver.adr.exrecipnotfound",
            "sorry, user unknown",
            "sorry, badrcptto",
            "sorry, no mailbox here by that name",
            "sorry, your envelope recipient has been denied",
            "that domain or user isn't in my list of allowed rcpthosts",
            "the email account that you tried to reach does not exist",
            "the following recipients was undeliverable",
            "the user does not exist",
            "this address no longer accepts mail",
            "this email address is wrong or no longer valid",
            "this recipient is in my badrecipientto list",
            "this recipient is not in my validrcptto list",
            "this spectator does not exist",
            "unknown mailbox",
            "unknown recipient",
            "unknown user",
            "user does not exist",
            "user missing home directory",
            "user not active",
            "user not exist",
            "user not found",
            "user not known",
            "user unknown",
            "utilisateur inconnu !",
            "vdeliver: invalid or unknown virtual user",
            "vdelivermail: user does not exist",
            "we do not relay, account limits apply",
            "no such local user",
            "recipient address rejected: user unknown in",
            "the recipient address was not found",
            "no such account",
            "user doesn't exist",
            "user doesn’t have a",
            "mailbox unknown",
            "invalid recipients",
            "non-existent user",
            "recipient addresses were unknown",
            "unknown address",
            "not our customer",
            "undeliverable address",
            "user is unknown",
            "invalid user",
            "is not a valid e-mail address",
            "user not in directory",
            "no such recipient here",
            "email account does not exist",
            "this user doesn't have a",
            "address couldn't be found",
            "doesn't have a yahoo",
            "recipient address rejected: access denied",
            "not listed in domino directory",
            "not listed in public name & address book",
            "ディレクトリのリストにありません",
            "宛先不明",
            "存在しない",
            "no valid recipients",
            "please check if address is correct",
        ),
    ),
    (
        "filtered",
        (
            "because the recipient is not accepting mail with attachments",
            "because the recipient is not accepting mail with embedded images",
            "blocked by policy: no spam please",
            "blocked by user's personal filter",
            "due to recipient preferences",
            "due to user preferences",
            "has restricted sms e-mail",
            "is not accepting any mail",
            "message filtered",
            "message rejected due to user rules",
            "not found recipient account",
            "refused due to recipient preferences",
            "rejected by recipient",
            "user refuses to receive this mail",
            "user reject",
            "we are not accepting mail from you",
            "you have been blocked by the recipient",
            "this account is protected by",
            "filtered by",
            "rejected per recipient",
        ),
    ),
    (
        "requireptr",
        (
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
            # The connecting IP does not match the name it claims (forward-confirmed rDNS).
            "unverifyable sending ip",
            "unverifiable sending ip",
            "mismatches client ip",
        ),
    ),
    (
        "notcompliantrfc",
        (
            "this message is not rfc 5322 compliant",
            "https://support.google.com/mail/?p=rfcmessagenoncompliant",
            "not rfc 5322 compliant",
            "multiple addresses in from",
            "message has been rejected because it does not comply with rfc",
            "not compliant with rfc",
            "missing a valid address in from",
        ),
    ),
    (
        "badreputation",
        (
            "has been temporarily rate limited due to ip reputation",
            "ip/domain reputation problems",
            "likely suspicious due to the very low reputation",
            "the sending mta's poor reputation",
            "poor reputation",
            "low reputation",
            "sender reputation",
            "bad reputation",
        ),
    ),
    (
        "rejected",
        (
            "access denied (in reply to mail from command)",
            "administrative prohibition",
            "all recipient addresses rejected : access denied",
            "blocked by sender blacklist",
            "by sender blacklist",
            "domain of sender address ",
            "email address is on senderfilterconfig list",
            "emetteur invalide",
            "empty envelope senders not allowed",
            "envelope blocked",
            "error: no third-party dsns",
            "from: domain is invalid. please provide a valid from:",
            "fully qualified email address required",
            "invalid domain, see <url:",
            "invalid sender",
            "is not a registered gateway user",
            "mail from not owned by user",
            "mailfrom domain is listed in spamhaus",
            "null sender is not allowed",
            "returned mail not accepted here",
            "rfc 1035 violation: recursive cname records for",
            "rule imposed mailbox access for",
            "sender address has been blacklisted",
            "sender email address rejected",
            "sender is in my badmailfrom list",
            "sender is spammer",
            "sender not pre-approved",
            "sender rejected",
            "sender domain is empty",
            "sender verify failed",
            "server does not accept mail from",
            "sorry, your don't authenticate or the domain isn't in my list of allowed rcpthosts",
            "spam sender",
            "unroutable sender address",
            "you are not allowed to post to this mailing list",
            "your access to submit messages to this e-mail system has been rejected",
            "your email address has been blacklisted",
            "sender address rejected",
            "sender denied",
            "sender blocked",
            "sender address is not",
            "sender verification",
            "sender domain",
            "sender not allowed",
            "envelope sender",
            "sender is not allowed",
            "does not accept mail from",
            "permission to post",
            "sender address rejected",
            "address that has been blacklisted",
        ),
    ),
    (
        "hostunknown",
        (
            "domain does not exist",
            "domain is not reachable",
            "domain must exist",
            "host or domain name not found",
            "host unknown",
            "host unreachable",
            "mail domain mentioned in email address is unknown",
            "name or service not known",
            "no such domain",
            "recipient address rejected: unknown domain name",
            "recipient domain must exist",
            "the account or domain may not exist",
            "unknown host",
            "unrouteable mail domain",
            "domain not found",
            "unknown domain",
            "host not found",
            "domain name not found",
            "nxdomain",
            "hostname not found",
            "unrouteable address",
            "bad destination system address",
        ),
    ),
    (
        "spamdetected",
        (
            " - spam",
            "//www.spamhaus.org/help/help_spam_16.htm",
            "//dsbl.org/help/help_spam_16.htm",
            "//mail.163.com/help/help_spam_16.htm",
            "554 5.7.0 reject, id=",
            "appears to be unsolicited",
            "blacklisted url in message",
            "block for spam",
            "blocked by spamassassin",
            "blocked for abuse. see http://att.net/blocks",
            "cannot be forwarded because it was detected as spam",
            "considered unsolicited bulk e-mail (spam) by our mail filters",
            "content filter rejection",
            "content rejected",
            "denied due to spam list",
            "dt:spm",
            "identified as spam",
            "identified spam",
            "is classified as spam and is rejected",
            "listed in work.drbl.imedia.ru",
            "mail appears to be unsolicited",
            "mail content denied",
            "may consider spam",
            "message considered as spam or virus",
            "message contains spam or virus",
            "message content rejected",
            "message detected as spam",
            "message filtered",
            "message filtered. please see the faqs section on spam",
            "message filtered. refer to the troubleshooting page at",
            "message looks like spam",
            "message is being rejected as it seems to be a spam",
            "message refused by mailmarshal spamprofiler",
            "message refused by trustwave seg spamprofiler",
            "message rejected as spam",
            "message rejected because of unacceptable content",
            "message rejected due to suspected spam content",
            "message rejected for policy reasons",
            "message was rejected for possible spam/virus content",
            "our email server thinks this email is spam",
            "our system has detected that this message is ",
            "probable spam",
            "reject bulk.advertising",
            "reject, id=",
            "rejected by spam filter",
            "rejected by spamassassin",
            "rejected due to spam",
            "rejected due to suspected spam content",
            "rejected: spamassassin score ",
            "rejected as spam",
            "sorry, message looks like spam to me",
            "spam blocked",
            "spam check",
            "spam content matched",
            "spam detected",
            "spam email",
            "spam email not accepted",
            "spam message rejected.",
            "spam not accepted",
            "spam refused",
            "spam rejection",
            "spam score ",
            "spambouncer identified spam",
            "spamming not allowed",
            "too many spam complaints",
            "too much spam.",
            "the email message was detected as spam",
            "the message has been rejected by spam filtering engine",
            "the message was rejected due to classification as bulk mail",
            "the content of this message looked like spam",
            "this e-mail was rejected by our spam filter",
            "this email is classified as spam",
            "this mail has been rejected because it appears to be spam",
            "this message has been flagged as spam",
            "this message was classified as spam",
            "this message was rejected by recurrent pattern detection system",
            "transaction failed spam message not queued",
            "we don't accept spam",
            "your email appears similar to spam we have received before",
            "your email breaches local uribl policy",
            "your email had spam-like ",
            "your email is considered spam",
            "your email is probably spam",
            "your email was detected as spam",
            "your message as spam and has prevented",
            "your message has been temporarily blocked by our filter",
            "your message has been rejected because it appears to be spam",
            "your message has triggered a spam block",
            "your message may contain the spam contents",
            "your message failed several antispam checks",
            "appears to be spam",
            "is spam",
            "as spam",
            "spam message",
            "spamming",
            "unsolicited",
            "spam",
        ),
    ),
    (
        "speeding",
        ("please try again slower", "receiving mail at a rate that prevents additional messages"),
    ),
    (
        "toomanyconn",
        (
            "all available ips are at maximum connection limit",
            "connection rate limit exceeded",
            "exceeds per-domain connection limit for",
            "has exceeded the max emails per hour ",
            "throttling failure: daily message quota exceeded",
            "throttling failure: maximum sending rate exceeded",
            "too many connections",
            "too many connections from your host",
            "too many concurrent smtp connections",
            "too many errors from your ip",
            "too many recipients for this message",
            "too many smtp sessions for this host",
            "trop de connexions, ",
            "we have already made numerous attempts to deliver this message",
            "too many messages",
            "rate limit",
            "rate limited",
            "connection limit",
            "too many recipients",
        ),
    ),
    (
        "blocked",
        (
            " said: 550 blocked",
            "//www.spamcop.net/bl.",
            "bad sender ip address",
            "banned sending ip",
            "blacklisted by",
            "blocked using ",
            "blocked - see http",
            "dnsbl:attrbl",
            "client host rejected: abus detecte gu_eml",
            "client host rejected: abus detecte",
            "client host rejected: may not be mail exchanger",
            "client host rejected: was not authenticated",
            "confirm this mail server",
            "connection dropped",
            "connection refused by",
            "connection reset by peer",
            "connection was dropped by remote host",
            "connections not accepted from ip addresses on spamhaus xbl",
            "currently sending spam see: ",
            "domain does not exist:",
            "dynamic/zombied/spam ips blocked",
            "error: no valid recipients from ",
            "esmtp not accepting connections",
            "extreme bad ip profile",
            "go away",
            "helo command rejected:",
            "host network not allowed",
            "hosts with dynamic ip",
            "invalid ip for sending mail of domain",
            "is in a black list",
            "is not allowed to send mail from",
            "no access from mail server",
            "no matches to nameserver query",
            "not currently accepting mail from your ip",
            "part of their network is on our block list",
            "please use the smtp server of your isp",
            "rejected because the sending mta or the sender has not passed validation",
            "rejecting open proxy",
            "sender ip address rejected",
            "server access forbidden by your ip ",
            "smtp error from remote mail server after initial connection:",
            "sorry, that domain isn't in my list of allowed rcpthosts",
            "sorry, your remotehost looks suspiciously like spammer",
            "temporarily deferred due to user complaints",
            "the email address used to send your message is not subscribed to this group",
            "the ip address sending this message does not have a ptr record setup",
            "too many spams from your ip",
            "unresolvable relay host name",
            "you are not allowed to connect",
            "you are sending spam",
            "your ip address is listed in the rbl",
            "your network is temporary blacklisted",
            "your server requires confirmation",
            "blocklist",
            "blacklist",
            "block list",
            "black list",
            "listed at",
            "listed in",
            "listed on",
            "rbl",
            "dnsbl",
            "spamhaus",
            "spamcop",
            "ip blocked",
            "blocked by",
            "has been blocked",
            "is blocked",
            "client host rejected",
            "too many unwanted messages",
            "not authorized to send email directly to our servers",
        ),
    ),
    (
        "virusdetected",
        (
            "it has a potentially executable attachment",
            "the message was rejected because it contains prohibited virus or spam content",
            "this form of attachment has been used by recent viruses or other malware",
            "virus detected",
            "virus phishing/malicious_url detected",
            "your message was infected with a virus",
            "virus",
            "malware",
            "infected",
        ),
    ),
    (
        "policyviolation",
        (
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
        ),
    ),
    (
        "contenterror",
        (
            "headers too large",
            "improper use of 8-bit data in message header",
            "message header size, or recipient list, exceeds policy limit",
            "message mime complexity exceeds the policy maximum",
            "routing loop detected -- too many received: headers",
            "this message contain invalid mime headers",
            "this message contain improperly-formatted binary content",
            "this message contain text that uses unnecessary base64 encoding",
            "invalid mime",
            "media error",
            "duplicate header",
            "invalid charset",
        ),
    ),
    (
        "securityerror",
        (
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
        ),
    ),
    (
        "systemfull",
        ("mail system full", "mail receiving disabled", "insufficient system storage"),
    ),
    (
        "systemerror",
        (
            "aliasing/forwarding loop broken",
            "can't create user output file",
            "could not load drd for domain",
            "internal error reading data",
            "internal server error: operation now in progress",
            "interrupted system call",
            "it encountered an error while being processed",
            "it would create a mail loop",
            "local configuration error",
            "local error in processing",
            "loop was found in the mail exchanger",
            "loops back to myself",
            "mail system configuration error",
            "recipient deferred because there is no mdb",
            "remote server is misconfigured",
            "server configuration error",
            "service currently unavailable",
            "system config error",
            "timeout waiting for input",
            "transaction failed ",
            "mail for you will be queued",
            "internal error",
            "system error",
            "configuration error",
            "ldap server",
            "queue file write error",
        ),
    ),
    (
        "networkerror",
        (
            " had no relevant answers.",
            "could not connect and send the mail to",
            "dns records for the destination computer could not be found",
            "hop count exceeded - possible mail loop",
            "host is unreachable",
            "host name lookup failure",
            "host not found, try again",
            "mail forwarding loop for ",
            "malformed name server reply",
            "malformed or unexpected name server reply",
            "maximum forwarding loop count exceeded",
            "message looping",
            "message probably in a routing loop",
            "no route to host",
            "too many hops",
            "unable to resolve route ",
            "unrouteable mail domain",
            "network is unreachable",
            "dns lookup",
            "could not be resolved",
            "mail loop",
            "loop detected",
            "forwarded more than the maximum allowed",
            "routing loop",
            "network error",
            "wasn't able to establish an smtp connection",
            "unable to establish an smtp connection",
        ),
    ),
    (
        "expired",
        (
            "connection timed out",
            "could not find a gateway for",
            "delivery attempts will continue to be made for",
            "delivery time expired",
            "failed to deliver to domain ",
            "giving up on",
            "has been delayed",
            "it has not been collected after",
            "message expired after sitting in queue for",
            "message expired, connection refulsed",
            "message has been in the queue too long",
            "message timed out",
            "retry time not reached for any host after a long failure period",
            "server did not respond",
            "this message has been in the queue too long",
            "unable to deliver message after multiple retries",
            "was not reachable within the allowed queue period",
            "your message could not be delivered for more than",
            "queue too long",
            "retry timeout exceeded",
            "could not be delivered for",
            "expired",
            "message expired",
            "could not deliver for the last",
            "has been failing for a long time",
            "did not accept our requests to connect",
            "have been failing for a long time",
            "not delivered within",
            "remote host is not responding",
            "queue.expired",
        ),
    ),
    (
        "syntaxerror",
        (
            "syntax error",
            "command unrecognized",
            "unrecognized command",
            "line too long",
            "bad command sequence",
            "command parameter not implemented",
            "parameter not implemented",
        ),
    ),
    (
        "mailererror",
        (
            "x-unix; ",
            "command died with status",
            "command failed: ",
            "exit status ",
            "mailer error",
            "pipe to |",
            "procmail: ",
            "bin/procmail",
            "unknown mailer error",
            "mailer error",
        ),
    ),
    (
        "notaccept",
        (
            "does not accept mail",
            "domain does not accept mail",
            "host does not accept mail",
            "mail receiving disabled",
            "name server: .: host not found",
            "no mx for",
            "null mx",
            "does not receive email",
            "this domain does not accept",
            "not accepting network messages",
            "indicated no smtp service",
            "no mx record",
            "couldn't find a mail exchanger",
        ),
    ),
)

_TEXT_CAP = 4096
_TOKEN = re.compile(r"\w+")
_KEY = 4


def _build_index() -> tuple[dict[str, list[tuple[int, str, str]]], list[tuple[int, str, str]]]:
    # Phrases are indexed by the first characters of their first word, so a text is checked
    # only against the phrases whose first word it contains (a set intersection instead of
    # ~700 substring scans). Phrases without a word are always checked.
    index: dict[str, list[tuple[int, str, str]]] = {}
    always: list[tuple[int, str, str]] = []
    for rank, (reason, phrases) in enumerate(REASON_PHRASES):
        for phrase in phrases:
            entry = (rank, reason, phrase)
            first = _TOKEN.search(phrase)
            if first is None:
                always.append(entry)
            else:
                index.setdefault(first.group(0)[:_KEY], []).append(entry)
    return index, always


_INDEX, _ALWAYS = _build_index()
_INDEX_KEYS = frozenset(_INDEX)


def reason_from_text(text: str) -> str:
    """The first reason (in table order) whose phrase table matches `text`, or ""."""
    return _reason_from_text(text[:_TEXT_CAP])


# Cached (on at most 4 KB): a report's text is consulted once per recipient it names.
@lru_cache(maxsize=64)
def _reason_from_text(text: str) -> str:
    lowered = " ".join(text.lower().split())
    best_rank = len(REASON_PHRASES)
    best = ""
    keys = {token[:_KEY] for token in _TOKEN.findall(lowered)}
    for key in keys & _INDEX_KEYS:
        for rank, reason, phrase in _INDEX[key]:
            if rank >= best_rank:
                break
            if phrase in lowered:
                best_rank, best = rank, reason
                break
    for rank, reason, phrase in _ALWAYS:
        if rank < best_rank and phrase in lowered:
            best_rank, best = rank, reason
    return best


# Orange and La Poste end their replies with a code naming the refusal ("LPN007_416",
# "OFR_416", "OFR005_505"); its last three digits are documented per cause (e.g. postmastery's
# "Orange postmaster SMTP error codes") and are more precise than the generic text around them.
# Codes documented only as "service refused, please try later" name no cause: "undefined".
ORANGE_CODE_REASONS: Final[dict[str, str]] = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "toomanyconn",
    "105": "undefined",
    "107": "undefined",
    "108": "undefined",
    "109": "undefined",
    "201": "undefined",
    "305": "securityerror",
    "401": "authfailure",
    "402": "securityerror",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "userunknown",
    "417": "mailboxfull",
    "420": "suspend",
    "421": "rejected",
    "423": "undefined",
    "424": "undefined",
    "426": "suspend",
    "505": "systemerror",
    "506": "spamdetected",
    "510": "blocked",
    "513": "undefined",
    "514": "mesgtoobig",
    "517": "authfailure",
    "630": "policyviolation",
    "999": "blocked",
}
_ORANGE_CODE = re.compile(r"\b(?:lpn|lpnaaa|ofr|ouk)(?:_|\d{3}[-_])(\d{3})\b", re.IGNORECASE)


# Cox ends its refusals with "AUP#<code>", documented on its email-error-codes page; the IPBL
# family names the block lists the sending IP is on, URLBL those a URL in the body is on.
COX_CODE_REASONS: Final[dict[str, str]] = {
    "CXBL": "blocked",
    "CDRBL": "blocked",
    "CXDNS": "requireptr",
    "CXSNDR": "authfailure",
    "CXSMTP": "rejected",
    "CXCNCT": "toomanyconn",
    "CXMXRT": "toomanyconn",
    "CXTHRT": "securityerror",
    "CXMJ": "securityerror",
}
_COX_CODE = re.compile(r"\baup#([0-9a-z]+)", re.IGNORECASE)


def reason_from_provider_code(text: str) -> str:
    """The reason a provider's own refusal code in `text` names (Orange/La Poste, Cox), or ""."""
    found = _ORANGE_CODE.search(text, 0, _TEXT_CAP)
    if found:
        return ORANGE_CODE_REASONS.get(found.group(1), "")
    found = _COX_CODE.search(text, 0, _TEXT_CAP)
    if found:
        code = found.group(1).upper()
        if code.startswith("IPBL"):
            return "blocked"
        if code.startswith("URLBL"):
            return "spamdetected"
        return COX_CODE_REASONS.get(code, "")
    return ""


def reason_from_status(status: str) -> str:
    """The reason an enhanced status code names on its own, or "" when it is not specific."""
    return STATUS_REASONS.get(status, "")


def match_reason(text: str, status: str = "", replycode: str = "") -> str:
    """Pick one reason of `REASONS` from a diagnostic text and optional status and reply codes.

    `status` is an RFC 3463 code ("5.1.1"), `replycode` an SMTP reply code ("550"); both may be
    empty. Delivered codes (2.x.x) give "delivered"; a status code that names a specific reason
    decides (`DECISIVE_STATUSES`, `STATUS_OVERRIDABLE_BY`); otherwise the text decides, then the
    status code, then the reply-code class ("onhold" for an unexplained temporary failure,
    "undefined" when nothing is known).
    """
    if status.startswith("2.") or (not status and replycode.startswith("2")):
        return "delivered"
    temporary = status.startswith("4") or (not status and replycode.startswith("4"))
    by_text = reason_from_text(text) if text else ""
    by_status = reason_from_status(status)
    if by_text == "hostunknown" and temporary:
        # A domain that does not resolve "for now" is a resolver problem, not a dead domain.
        return "networkerror"
    if by_status and status in STATUS_OVERRIDABLE_BY:
        allowed = STATUS_OVERRIDABLE_BY[status]
        return by_text if by_text in allowed else by_status
    if by_status and status in DECISIVE_STATUSES:
        return by_status
    if by_text:
        return by_text
    if by_status:
        return by_status
    return "onhold" if temporary else "undefined"


# The RFC 3463 subject.detail that states each reason, used when a report carries no enhanced
# code. The class digit is the failure's (2, 4 or 5). Non-failures other than delivery reports
# (complaints, auto-replies) have no status.
REASON_STATUS_DETAIL: Final[dict[str, str]] = {
    "delivered": "0.0",
    "userunknown": "1.1",
    "hostunknown": "1.2",
    "hasmoved": "1.6",
    "rejected": "1.8",
    "notaccept": "3.2",
    "suspend": "2.1",
    "mailboxfull": "2.2",
    "exceedlimit": "2.3",
    "filtered": "2.0",
    "systemerror": "3.0",
    "mailererror": "3.0",
    "systemfull": "3.1",
    "mesgtoobig": "3.4",
    "networkerror": "4.0",
    "toomanyconn": "4.5",
    "expired": "4.7",
    "syntaxerror": "5.2",
    "contenterror": "6.0",
    "notcompliantrfc": "6.0",
    "securityerror": "7.0",
    "blocked": "7.1",
    "badreputation": "7.1",
    "spamdetected": "7.1",
    "virusdetected": "7.1",
    "policyviolation": "7.1",
    "norelaying": "7.1",
    "speeding": "7.1",
    "authfailure": "7.26",
    "requireptr": "7.25",
    "onhold": "0.0",
    "undefined": "0.0",
}


def infer_status(reason: str, replycode: str = "", action: str = "") -> str:
    """The standard enhanced code for `reason` when a report carries none, or "".

    The class comes from the reply code (2xx, 4xx, 5xx), else from the DSN action (delivered
    is 2, delayed is 4), else 5: a failure report without a code is a permanent failure.
    """
    detail = REASON_STATUS_DETAIL.get(reason)
    if detail is None:
        return ""
    if reason == "delivered" or action in ("delivered", "relayed", "expanded"):
        klass = "2"
    elif replycode[:1] in ("2", "4", "5"):
        klass = replycode[0]
    elif action == "delayed":
        klass = "4"
    else:
        klass = "5"
    if klass == "2":
        return "2.0.0"
    return f"{klass}.{detail}"


def is_hard(reason: str, status: str = "") -> bool:
    """True when the address itself is bad: userunknown, hostunknown, hasmoved, or notaccept
    unless temporary (a 4.x.x status: the domain may accept mail again)."""
    if reason == "notaccept":
        return not status.startswith("4")
    return reason in HARD_REASONS
