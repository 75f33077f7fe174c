"""What the MTA that wrote a report says in its own words.

Besides quoting the remote server, an MTA writes fixed sentences of its own: Exim's "all
relevant MX records point to non-existent hosts", qmail's "Sorry, I couldn't find any host
named", Exchange's "RESOLVER.ADR.RecipNotFound", Domino's "not listed in Domino Directory" in
five languages. Each sentence is the MTA's statement of a reason (`stated` in the evidence),
read only in reports that MTA wrote (the record's `detector`), as Sisimai's per-MTA classes
read them. Some MTAs also state a reason by the phase the session failed in: a refusal of
HELO is a block, one of MAIL FROM a refused sender.
"""

from __future__ import annotations

import re
from typing import Final

from stmails.core.reasons.status import reason_from_status

_Table = tuple[tuple[str, tuple[str, ...]], ...]

# Exim's own error texts (shared by the systems that run it: mail.ru, MX Logic).
_EXIM: Final[_Table] = (
    ("userunknown", ("user not found",)),
    (
        "hostunknown",
        (
            "all host address lookups failed permanently",
            "all relevant mx records point to non-existent hosts",
            "unrouteable address",
        ),
    ),
    ("mailboxfull", ("mailbox is full", "error: quota exceed")),
    (
        "notaccept",
        (
            "an mx or srv record indicated no smtp service",
            "no host found for existing smtp connection",
        ),
    ),
    (
        "syntaxerror",
        (
            "angle-brackets nested too deep",
            'expected word or "<"',
            "domain missing in source-routed address",
            "malformed address:",
        ),
    ),
    (
        "systemerror",
        (
            "delivery to file forbidden",
            "delivery to pipe forbidden",
            "local delivery failed",
            "lmtp error after ",
        ),
    ),
    ("contenterror", ('too many "received" headers',)),
    (
        "expired",
        (
            "retry timeout exceeded",
            "no action is required on your part",
            "retry time not reached for any host after a long failure period",
            "all hosts have been failing for a long time and were last tried",
            "delay reason: ",
            "has been frozen",
            "was frozen on arrival by ",
        ),
    ),
)

# qmail's own error texts (qmail-local, qmail-remote, error_str.c, the qmail-ldap patch).
_QMAIL: Final[_Table] = (
    ("userunknown", ("no mailbox here by that name", "does not like recipient.")),
    ("mailboxfull", ("disk quota exceeded",)),
    ("mesgtoobig", ("message size exceeds fixed maximum message size:",)),
    ("hostunknown", ("sorry, i couldn't find any host ",)),
    (
        "systemfull",
        ("requested action not taken: mailbox unavailable (not enough free space)",),
    ),
    ("systemerror", ("bad interpreter: no such file or directory", "system error", "unable to")),
    ("notaccept", ("sorry, i couldn't find a mail exchanger or ip address",)),
    (
        "networkerror",
        (
            "sorry, i wasn't able to establish an smtp connection",
            "sorry. although i'm listed as a best-preference mx or a for that host",
        ),
    ),
    (
        "suspend",
        ("mailaddress is administrativley disabled", "mailaddress is administrativly disabled"),
    ),
    ("exceedlimit", ("the message exeeded the maximum size the user accepts",)),
    (
        "systemerror",
        (
            "automatic homedir creator crashed",
            "illegal value in ldap attribute",
            "ldap attribute is not given but mandatory",
            "timeout while performing search on ldap server",
            "too many results returned but needs to be unique",
            "permanent error while executing qmail-forward",
            "temporary error in automatic homedir creation",
            "temporary error while executing qmail-forward",
            "temporary failure in ldap lookup",
            "unable to contact ldap server",
            "unable to login into ldap server, bad credentials",
        ),
    ),
    ("expired", ("this message has been in the queue too long.",)),
)

# Microsoft Exchange's NDR categories: the resolver or transport component that refused.
_EXCHANGE: Final[_Table] = (
    ("hostunknown", ("smtpsend.dns.nonexistentdomain",)),
    ("networkerror", ("smtpsend.dns.mxloopback",)),
    (
        "userunknown",
        (
            "resolver.adr.recipnotfound",
            "resolver.adr.exrecipnotfound",
            "resolver.adr.recipientnotfound",
        ),
    ),
    ("toomanyconn", ("resolver.adr.reciplimit",)),
    (
        "systemerror",
        ("resolver.adr.badprimary", "resolver.adr.invalidinsmtp", "resolver.adr.ambiguous"),
    ),
    ("securityerror", ("resolver.rst.authrequired",)),
    ("rejected", ("resolver.rst.notauthorized",)),
    ("mesgtoobig", ("resolver.rst.recipsizelimit",)),
    ("expired", ("queue.expired",)),
)

# Exchange 2003's diagnostic codes in its reports (MSEXCH:IMS / IMC errors).
_EXCHANGE2003: Final[_Table] = (
    ("userunknown", ("000c05a6",)),
    ("systemerror", ("00010256", "000d06b5")),
    ("networkerror", ("00120270",)),
    ("contenterror", ("00050311", "000502cc")),
    ("securityerror", ("000b0981",)),
    ("filtered", ("000c0595",)),
    ("onhold", ("000b099c", "000b09aa", "000b09b6")),
)

MTA_MESSAGES: Final[dict[str, _Table]] = {
    "exim": _EXIM,
    "mailru": _EXIM,
    "mxlogic": _EXIM,
    "qmail": _QMAIL,
    "exchange2007": _EXCHANGE,
    "office365": _EXCHANGE,
    "exchange2003": _EXCHANGE2003,
    # Facebook's documented response codes (postmaster.facebook.com/response_codes).
    "facebook": (
        ("userunknown", ("rcp-p1", "int-p1", "int-p3", "int-p4")),
        ("filtered", ("rcp-p2", "rcp-p3")),
        ("mesgtoobig", ("msg-p1", "int-p2")),
        ("contenterror", ("msg-p2", "msg-p3", "pol-p6", "pol-p7")),
        ("securityerror", ("pol-p1", "pol-p2", "pol-p5")),
        ("notaccept", ("pol-p3", "pol-p4", "pol-t1", "pol-t2", "pol-t3")),
        ("rejected", ("dns-p1", "dns-p2", "dns-t1", "dns-p3", "dns-t2")),
        ("systemerror", ("con-t1",)),
        ("toomanyconn", ("con-t3",)),
        ("suspend", ("rcp-t4",)),
        ("undefined", ("rcp-t1", "msg-t1", "con-t2", "con-t4")),
    ),
    "amavis": (
        ("spamdetected", (" - spam",)),
        ("virusdetected", (" - infected",)),
        ("contenterror", (" - bad header:",)),
        ("exceedlimit", (" - message size exceeds recipient",)),
        (
            "systemerror",
            (
                " - temporary mta failure on relaying",
                " - rejected by next-hop mta on relaying",
                " - unable to relay message back to mta",
            ),
        ),
    ),
    "aol": (
        ("hostunknown", ("host or domain name not found",)),
        ("notaccept", ("type=mx: malformed or unexpected name server reply",)),
    ),
    "biglobe": (
        ("filtered", ("mail delivery failed... user unknown",)),
        (
            "mailboxfull",
            ("the number of messages in recipient's mailbox exceeded the local limit.",),
        ),
    ),
    "courier": (
        ("hostunknown", ("no such domain.",)),
        ("systemerror", ("this domain's dns violates rfc 1035.",)),
        ("networkerror", ("dns lookup failed.",)),
    ),
    "domino": (
        (
            "userunknown",
            (
                "not listed in domino directory",
                "not listed in public name & address book",
                "non répertorié dans l'annuaire domino",
                "no se encuentra en el directorio de domino",
                "domino ディレクトリには見つかりません",
            ),
        ),
        ("filtered", ("cannot route mail to user",)),
        ("systemerror", ("several matches found in domino directory",)),
    ),
    "notes": (
        (
            "userunknown",
            ("user not listed in public name & address book", "ディレクトリのリストにありません"),
        ),
        ("networkerror", ("message has exceeded maximum hop count",)),
    ),
    "dragonfly": (
        ("expired", ("could not deliver for the last ",)),
        ("hostunknown", ("dns lookup failure: host ",)),
    ),
    "gmail": (
        # Google Workspace's wording of a resolver failure comes first: it also says "domain
        # name not found", yet the lookup failed rather than found no domain.
        ("networkerror", (" had no relevant answers.", " responded with code nxdomain")),
        (
            "userunknown",
            ("because the address couldn't be found. check for typos or unnecessary spaces",),
        ),
        ("notaccept", ("null mx",)),
        (
            "expired",
            (
                "dns error: could not contact dns servers",
                "delivery to the following recipient has been delayed",
                "the recipient server did not accept our requests to connect",
            ),
        ),
        (
            "hostunknown",
            (
                "dns error: domain name not found",
                "dns error: dns server returned answer with no data",
            ),
        ),
    ),
    "gmx": (("expired", ("delivery retry timeout exceeded",)),),
    "imailserver": (
        ("hostunknown", ("unknown host",)),
        ("userunknown", ("unknown user", "invalid final delivery userid")),
        ("mailboxfull", ("user mailbox exceeds allowed size",)),
        ("virusdetected", ("requested action not taken: virus detected",)),
        ("undefined", ("undeliverable to",)),
        ("expired", ("delivery failed ",)),
    ),
    "kddi": (
        ("mailboxfull", ("as their mailbox is full",)),
        ("norelaying", ("due to the following smtp relay error",)),
        ("hostunknown", ("as the remote domain doesnt exist",)),
    ),
    "mcafee": (
        ("userunknown", (" user not exist", " unknown.", "550 unknown user ", "no such user")),
    ),
    "messagelabs": (
        ("userunknown", ("542 ", " rejected", "no such user")),
        ("securityerror", ("please turn on smtp authentication in your mail client",)),
    ),
    "messagingserver": (("hostunknown", ("illegal host/domain name found",)),),
    "opensmtpd": (
        ("expired", ("envelope expired",)),
        ("hostunknown", ("invalid domain name", "domain does not exist")),
        (
            "notaccept",
            (
                "destination seem to reject all mails",
                "no mx found for domain",
                "no mx found for destination",
            ),
        ),
        (
            "networkerror",
            (
                "address family mismatch on destination mxs",
                "all routes to destination blocked",
                "bad dns lookup error code",
                "could not retrieve source address",
                "loop detected",
                "network error on destination mxs",
                "no valid route to remote mx",
                "no valid route to destination",
                "temporary failure in mx lookup",
            ),
        ),
        ("securityerror", ("could not retrieve credentials",)),
    ),
    "outlook": (
        (
            "hostunknown",
            (
                "the mail could not be delivered to the recipient because the domain is not "
                "reachable",
            ),
        ),
        ("userunknown", ("requested action not taken: mailbox unavailable",)),
    ),
    "receivingses": (
        ("filtered", ("mailbox does not exist",)),
        ("mesgtoobig", ("message too large",)),
        ("mailboxfull", ("mailbox full",)),
        ("contenterror", ("message content rejected",)),
    ),
    "trendmicro": (("userunknown", ("unable to deliver",)),),
    "verizon": (
        (
            "userunknown",
            (
                "550 - requested action not taken: no such user here",
                "no valid recipients for this mm",
            ),
        ),
    ),
    "zoho": (("expired", ("host not reachable",)),),
}

# The reason an MTA states by the phase of the session that failed.
_GREETING_BLOCKED: Final[dict[str, str]] = {"HELO": "blocked", "EHLO": "blocked"}
MTA_COMMANDS: Final[dict[str, dict[str, str]]] = {
    "exim": {**_GREETING_BLOCKED, "MAIL": "onhold"},
    "qmail": _GREETING_BLOCKED,
    "mailru": {**_GREETING_BLOCKED, "MAIL": "rejected"},
    "mxlogic": {**_GREETING_BLOCKED, "MAIL": "rejected"},
}


# Gmail ends older reports with the state its SMTP client was in when the reply came
# ("(state 14)"): the phase names the reason (after RCPT an unknown user, after DATA a filter).
GMAIL_STATES: Final[dict[str, str]] = {
    "6": "systemerror",
    "8": "systemerror",
    "9": "systemerror",
    "12": "norelaying",
    "13": "blocked",
    "14": "userunknown",
    "15": "filtered",
    "17": "filtered",
    "18": "filtered",
}
_GMAIL_STATE = re.compile(r"\(state (\d{1,2})\)")
# Where an MTA's report starts quoting the remote server.
_REPLY_MARKERS: Final[dict[str, str]] = {"qmail": "remote host said:"}
# MTAs whose reports carry no words of their own for some refusals but state the reason by
# the enhanced code they put on them (Amazon SES receipt rules).
_STATUS_STATES: Final[frozenset[str]] = frozenset({"receivingses"})


def stated_by_mta(mta: str, diagnostic: str, command: str = "", status: str = "") -> str:
    """The reason the MTA named `mta` states in its own words in `diagnostic`, or by the
    session phase (`command`) that failed, or (for a few) by the code it gave; "" when it
    states none."""
    by_command = MTA_COMMANDS.get(mta, {}).get(command, "")
    if by_command:
        return by_command
    table = MTA_MESSAGES.get(mta)
    if not table or not diagnostic:
        return reason_from_status(status) if mta in _STATUS_STATES else ""
    lowered = " ".join(diagnostic[:4096].lower().split())
    stated = ""
    if mta == "gmail":
        state = _GMAIL_STATE.search(lowered)
        if state is not None:
            stated = GMAIL_STATES.get(state.group(1), "")
    marker = _REPLY_MARKERS.get(mta, "")
    if marker and marker in lowered:
        # The MTA quotes the remote server after a fixed marker: its own table reads only the
        # quote ("does not like recipient." names the phase, not the reason).
        lowered = lowered[lowered.index(marker) :]
    if not stated:
        for reason, phrases in table:
            if any(phrase in lowered for phrase in phrases):
                stated = reason
                break
    if mta == "gmail" and stated and status and ".0" not in status:
        # Gmail quotes the remote server's specific code: it names the reason better than the
        # phase Gmail was in.
        return reason_from_status(status)
    if not stated and mta in _STATUS_STATES:
        return reason_from_status(status)
    return stated


__all__ = ["GMAIL_STATES", "MTA_COMMANDS", "MTA_MESSAGES", "stated_by_mta"]
