"""Which opens and clicks were made by machines: the rules, as a data table.

Mail privacy proxies load images before anybody reads the message, and security gateways follow
links to inspect them. Such hits are still recorded, with the name of the rule that caught them in
`machine`, but they are kept out of the engagement figures (docs/deliverability.md lists the rules
and the public documentation behind each). A hit is a person's unless a rule matches; the first
matching rule names it.

Rules that need to know who was mailed (the send's time, the subscriber's other clicks) apply
only with individual tracking (`privacy.individual_tracking`), when the URL names the subscriber.
Every check is a bounded substring or network lookup: no regular expression sees the user agent.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

HitKind = Literal["view", "click"]

# Longest user agent looked at (the rest cannot change a verdict worth having).
MAX_USER_AGENT_CHARS = 512
# A hit this soon after the message was handed to the SMTP server is a machine's: people do not
# open (let alone click) within seconds of delivery, gateways and prefetchers do.
SECONDS_AFTER_SEND = 10
# Clicks on two different links of one message this close together: a scanner following every
# link (both clicks are flagged, the earlier one after the fact).
BURST_SECONDS = 3


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: hits of `kinds` whose `field` matches `pattern` are a machine's (`name`).

    `field` is `user_agent` (case-insensitive substring), `user_agent_exact` (the whole header,
    stripped), `network` (the client address is in the CIDR block) or `method`.
    """

    name: str
    kinds: tuple[HitKind, ...]
    field: Literal["user_agent", "user_agent_exact", "network", "method"]
    pattern: str


BOTH: tuple[HitKind, ...] = ("view", "click")
CLICKS: tuple[HitKind, ...] = ("click",)
VIEWS: tuple[HitKind, ...] = ("view",)

RULES: tuple[Rule, ...] = (
    # A HEAD request fetches no content: link checkers and prefetchers, never a reader.
    Rule("head_request", BOTH, "method", "HEAD"),
    # Apple Mail Privacy Protection loads every image of a message when the device fetches it,
    # through Apple's relays, with the bare user agent "Mozilla/5.0"; Apple's own network is
    # 17.0.0.0/8.
    Rule("apple_mpp", VIEWS, "user_agent_exact", "Mozilla/5.0"),
    Rule("apple_mpp", VIEWS, "network", "17.0.0.0/8"),
    # Microsoft 365 (Exchange Online Protection, Safe Links, Safe Attachments' sandbox) scans
    # from the EOP ranges Microsoft publishes for its mail service, and its time-of-click check
    # identifies itself as Office.
    *(
        Rule("microsoft_scanner", BOTH, "network", block)
        for block in ("40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17")
    ),
    Rule("microsoft_scanner", CLICKS, "user_agent", "ms-office"),
    Rule("microsoft_scanner", CLICKS, "user_agent", "microsoft office"),
    # Security gateways that name themselves in the user agent.
    Rule("barracuda", BOTH, "user_agent", "barracuda"),
    Rule("mimecast", BOTH, "user_agent", "mimecast"),
    Rule("proofpoint", BOTH, "user_agent", "proofpoint"),
    Rule("proofpoint", BOTH, "user_agent", "urldefense"),
    Rule("cisco", BOTH, "user_agent", "ironport"),
    Rule("cisco", BOTH, "user_agent", "ciscosecureemail"),
    # Crawlers, headless browsers and HTTP libraries.
    *(
        Rule("robot", BOTH, "user_agent", word)
        for word in (
            # "bot" followed by a version, a name part or a separator ("Googlebot/2.1",
            # "Slackbot-LinkExpanding", "bingbot;"), not a phone called Cubot.
            "bot/",
            "bot-",
            "bot;",
            "facebookexternalhit",
            "crawler",
            "spider",
            "headlesschrome",
            "phantomjs",
            "python-requests",
            "python-urllib",
            "go-http-client",
            "curl/",
            "wget/",
            "java/",
            "okhttp",
            "libwww-perl",
        )
    ),
    # A click without a user agent is a program's (image loads by some mail clients have none).
    Rule("no_user_agent", CLICKS, "user_agent_exact", ""),
)


@dataclass(frozen=True, slots=True)
class _Compiled:
    exact: dict[str, list[tuple[str, tuple[HitKind, ...]]]]
    words: tuple[tuple[str, str, tuple[HitKind, ...]], ...]
    networks: tuple[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str, tuple[HitKind, ...]], ...
    ]
    methods: dict[str, tuple[str, tuple[HitKind, ...]]]


def _compile(rules: Sequence[Rule]) -> _Compiled:
    exact: dict[str, list[tuple[str, tuple[HitKind, ...]]]] = {}
    words: list[tuple[str, str, tuple[HitKind, ...]]] = []
    networks = []
    methods: dict[str, tuple[str, tuple[HitKind, ...]]] = {}
    for rule in rules:
        if rule.field == "user_agent_exact":
            exact.setdefault(rule.pattern.strip(), []).append((rule.name, rule.kinds))
        elif rule.field == "user_agent":
            words.append((rule.pattern.lower(), rule.name, rule.kinds))
        elif rule.field == "network":
            networks.append((ipaddress.ip_network(rule.pattern), rule.name, rule.kinds))
        else:
            methods.setdefault(rule.pattern.upper(), (rule.name, rule.kinds))
    return _Compiled(exact, tuple(words), tuple(networks), methods)


_RULES = _compile(RULES)


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(ip.strip()[:64])
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def by_request(kind: HitKind, method: str, user_agent: str, ip: str) -> str:
    """The rule (by name) the request itself matches, or '' for none."""
    return _by_request(kind, method[:16], user_agent[:MAX_USER_AGENT_CHARS], ip[:64])


# Readers and scanners repeat their user agents and addresses: the latest verdicts are kept
# (their keys are bounded by the truncation above).
@functools.lru_cache(maxsize=8192)
def _by_request(kind: HitKind, method: str, agent: str, ip: str) -> str:
    rules = _RULES
    matched = rules.methods.get(method.upper())
    if matched is not None and kind in matched[1]:
        return matched[0]
    for name, kinds in rules.exact.get(agent.strip(), ()):
        if kind in kinds:
            return name
    lowered = agent.lower()
    for word, name, kinds in rules.words:
        if kind in kinds and word in lowered:
            return name
    address = _address(ip) if ip else None
    if address is not None:
        for network, name, kinds in rules.networks:
            if kind in kinds and address.version == network.version and address in network:
                return name
    return ""


def too_soon(sent_at: datetime | None, at: datetime) -> str:
    """`too_soon` when the hit came within SECONDS_AFTER_SEND of the send, else ''."""
    if sent_at is None:
        return ""
    elapsed = (at - sent_at).total_seconds()
    return "too_soon" if elapsed < SECONDS_AFTER_SEND else ""


def in_burst(at: datetime, link_id: int, earlier: Sequence[tuple[int, datetime]]) -> bool:
    """Whether a click at `at` on `link_id` comes within BURST_SECONDS of a click on another
    link (`earlier`: the same subscriber's clicks on the same campaign, as (link id, time))."""
    return any(
        other != link_id and abs((at - when).total_seconds()) <= BURST_SECONDS
        for other, when in earlier
    )
