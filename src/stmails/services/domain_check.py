"""The sending-domain check: SPF, DKIM, DMARC, alignment, MX and the sending hosts' PTR.

`check_domain(domain, resolver=...)` asks DNS through the dnspython resolver it is given (the
system's in production, a loopback server in tests) and returns one `Check` per subject, each
`pass`, `warn`, `fail` or `unknown` (DNS did not answer), with the facts found and concrete
advice: the record to publish. SPF and DMARC records are parsed and their lookups counted by
checkdmarc (RFC 7208's limit of 10 DNS lookups, include chains, redirect loops; RFC 7489's tags).

Alignment (RFC 7489 section 3.1): DKIM is aligned when the signing domain (the From domain,
which holds the keys) and the From domain share their organizational domain (relaxed) or are
equal (strict, `adkim=s`); SPF is aligned when the envelope (Return-Path) domain relates to
the From domain the same way under `aspf`.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.resolver
import dns.reversename
from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # checkdmarc loads dnspython's DNSSEC algorithms, which name cryptography's deprecated DSA
    # classes when imported; nothing here uses DSA.
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf
    from checkdmarc.utils import get_base_domain

log = logging.getLogger(__name__)

__all__ = [
    "STATUSES",
    "Check",
    "DkimPublication",
    "DomainReport",
    "KeyToCheck",
    "check_domain",
    "dkim_publication",
]

STATUSES = ("pass", "warn", "fail", "unknown")
# Seconds one DNS question may take (checkdmarc retries once more on a timeout).
DNS_TIMEOUT = 2.0
# Addresses that are never a public sender (their reverse DNS is not checked): RFC 1918,
# shared address space (RFC 6598), unique local IPv6; loopback and link-local come on top.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# Sending hosts whose addresses are looked up, and addresses per host.
MAX_HOSTS = 5
MAX_ADDRESSES = 4


@dataclass(frozen=True)
class Check:
    """One subject of the check: its status, the facts found and what to do about a failure."""

    name: str
    status: str
    facts: dict[str, Any] = field(default_factory=dict)
    advice: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The check as the API returns it."""
        return {
            "name": self.name,
            "status": self.status,
            "facts": self.facts,
            "advice": list(self.advice),
        }


@dataclass(frozen=True)
class DomainReport:
    """Every check of one domain; `status` is the worst of them."""

    domain: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        """`fail` if any check failed, else `unknown`, else `warn`, else `pass`."""
        found = {c.status for c in self.checks}
        for status in ("fail", "unknown", "warn"):
            if status in found:
                return status
        return "pass"

    def to_dict(self) -> dict[str, Any]:
        """The report as the API returns it."""
        return {
            "domain": self.domain,
            "status": self.status,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class KeyToCheck:
    """A DKIM key stmails holds for the domain: selector, status and base64 public key."""

    selector: str
    status: str
    public_key: str
    record: str


@dataclass(frozen=True)
class DkimPublication:
    """What DNS publishes for one selector: `match` (the key), `mismatch` (another key or a
    revoked one), `missing` (no DKIM record) or `unknown` (DNS did not answer)."""

    state: str
    found: str = ""


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str] | None:
    """The TXT values at `name` (character-strings joined); [] for none; None when DNS fails."""
    try:
        answer = resolver.resolve(name, "TXT", lifetime=DNS_TIMEOUT * 2)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError):
        return None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _der_key(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def dkim_publication(
    resolver: dns.resolver.Resolver, selector: str, domain: str, public_key: str
) -> DkimPublication:
    """Whether `selector._domainkey.domain` publishes `public_key` (base64 DER)."""
    values = _txt(resolver, f"{selector}._domainkey.{domain}")
    if values is None:
        return DkimPublication("unknown")
    records = [v for v in values if "p=" in v]
    if not records:
        return DkimPublication("missing")
    wanted = _der_key(public_key)
    for record in records:
        published = _der_key(_tags(record).get("p", ""))
        if published is not None and published == wanted:
            return DkimPublication("match", record)
    return DkimPublication("mismatch", records[0])


def _aligned(first: str, second: str, mode: str) -> bool:
    if mode == "s":
        return first == second
    return bool(get_base_domain(first) == get_base_domain(second))


def _spf(domain: str, resolver: dns.resolver.Resolver, sending_ips: Sequence[str]) -> Check:
    result = check_spf(domain, resolver=resolver, timeout=DNS_TIMEOUT, retries=1)
    facts: dict[str, Any] = {
        "domain": domain,
        "record": result.get("record"),
        "dns_lookups": result.get("dns_lookups"),
        "void_dns_lookups": result.get("void_dns_lookups"),
        "warnings": [str(w) for w in result.get("warnings", [])],
    }
    mechanisms = (
        " ".join(f"ip{ipaddress.ip_address(ip).version}:{ip}" for ip in sending_ips)
        or "include:<your provider's SPF domain>"
    )
    suggested = f'{domain} TXT "v=spf1 mx {mechanisms} ~all"'
    if result.get("valid"):
        return Check("spf", "warn" if facts["warnings"] else "pass", facts)
    error = str(result.get("error", ""))
    facts["error"] = error
    lowered = error.lower()
    if "timed out" in lowered or "servfail" in lowered or "nameserver" in lowered:
        return Check("spf", "unknown", facts, ("DNS did not answer; try again later.",))
    if result.get("record") is None:
        advice = (f"Publish an SPF record for the envelope domain: {suggested}.",)
    elif "lookup" in lowered:
        advice = (
            "The SPF record needs more than 10 DNS lookups (RFC 7208 section 4.6.4), so "
            "receivers treat it as a permanent error. Replace include: mechanisms that you no "
            "longer use, or list the sending addresses as ip4:/ip6: mechanisms.",
        )
    else:
        advice = (f"Fix the SPF record ({error}); for example: {suggested}.",)
    return Check("spf", "fail", facts, advice)


def _dkim(domain: str, resolver: dns.resolver.Resolver, keys: Sequence[KeyToCheck]) -> Check:
    published = [k for k in keys if k.status in {"active", "retiring", "pending"}]
    if not published:
        return Check(
            "dkim",
            "fail",
            {"keys": []},
            (f"Generate a DKIM key (POST /api/domains/{domain}/dkim), publish its record and "
             "activate it; unsigned mail cannot pass DMARC through DKIM.",),
        )  # fmt: skip
    facts: list[dict[str, Any]] = []
    advice: list[str] = []
    statuses: list[str] = []
    for key in published:
        found = dkim_publication(resolver, key.selector, domain, key.public_key)
        facts.append({"selector": key.selector, "status": key.status, "dns": found.state})
        name = f"{key.selector}._domainkey.{domain}"
        if found.state == "match":
            statuses.append("pass")
        elif found.state == "unknown":
            statuses.append("unknown")
            advice.append(f"DNS did not answer for {name}; try again later.")
        elif key.status == "pending":
            statuses.append("warn")
            advice.append(f'Publish {name} TXT "{key.record}" before activating this key.')
        else:
            statuses.append("fail")
            what = "a different key" if found.state == "mismatch" else "no DKIM record"
            advice.append(
                f'{name} publishes {what}: publish {name} TXT "{key.record}" '
                f"(the {key.status} key signs or signed mail with this selector)."
            )
    if not any(k.status == "active" for k in published):
        statuses.append("warn")
        advice.append(f"No key is active: mail from {domain} is not signed yet.")
    status = next((s for s in ("fail", "unknown", "warn") if s in statuses), "pass")
    return Check("dkim", status, {"keys": facts}, tuple(advice))


def _dmarc(domain: str, resolver: dns.resolver.Resolver) -> tuple[Check, dict[str, str]]:
    result: dict[str, Any] = dict(check_dmarc(domain, resolver=resolver, timeout=DNS_TIMEOUT))
    facts: dict[str, Any] = {
        "record": result.get("record"),
        "location": result.get("location"),
        "warnings": [str(w) for w in result.get("warnings", [])],
    }
    suggested = f'_dmarc.{domain} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"'
    if not result.get("valid"):
        error = str(result.get("error", ""))
        facts["error"] = error
        lowered = error.lower()
        if "timed out" in lowered or "servfail" in lowered or "nameserver" in lowered:
            return Check("dmarc", "unknown", facts, ("DNS did not answer; try again later.",)), {}
        if result.get("record") is None:
            failure = (
                f"Publish a DMARC record: {suggested}. Start with p=none, read the aggregate "
                "reports (POST /api/dmarc/reports), then move to p=quarantine and p=reject."
            )
        else:
            failure = f"Fix the DMARC record ({error}); for example: {suggested}."
        return Check("dmarc", "fail", facts, (failure,)), {}
    tags = {name: str(value.get("value")) for name, value in result.get("tags", {}).items()}
    policy = {name: tags[name] for name in ("p", "sp", "pct", "adkim", "aspf") if name in tags}
    facts["policy"] = policy
    facts["rua"] = [
        str(u.get("address", u)) for u in result["tags"].get("rua", {}).get("value", [])
    ]
    advice: list[str] = []
    if policy.get("p") == "none":
        advice.append(
            "The policy is p=none (monitoring only): once the aggregate reports show that your "
            "own mail passes, move to p=quarantine, then p=reject."
        )
    if not facts["rua"]:
        advice.append(
            f"Add rua=mailto:dmarc-reports@{domain} to the record so that receivers send "
            "aggregate reports, and upload them to stmails (POST /api/dmarc/reports)."
        )
    return Check(
        "dmarc", "warn" if advice or facts["warnings"] else "pass", facts, tuple(advice)
    ), policy


def _alignment(
    domain: str, envelope_domain: str | None, has_active_key: bool, policy: dict[str, str]
) -> Check:
    adkim, aspf = policy.get("adkim", "r"), policy.get("aspf", "r")
    facts: dict[str, Any] = {
        "from_domain": domain,
        "envelope_domain": envelope_domain,
        "adkim": adkim,
        "aspf": aspf,
        "dkim_aligned": has_active_key and _aligned(domain, domain, adkim),
        "spf_aligned": envelope_domain is not None and _aligned(envelope_domain, domain, aspf),
    }
    advice: list[str] = []
    if envelope_domain is None:
        advice.append(
            "No bounce address is set (settings: sending.bounce_address), so the envelope "
            "domain is unknown; set one under the From domain so that SPF aligns."
        )
    elif not facts["spf_aligned"]:
        target = domain if aspf == "s" else f"{domain} or a subdomain of it"
        advice.append(
            f"The envelope domain {envelope_domain} does not align with {domain} (aspf={aspf}): "
            f"use a bounce address under {target} so that SPF counts for DMARC."
        )
    if not facts["dkim_aligned"]:
        advice.append(f"Activate a DKIM key for {domain} so that DKIM aligns with From.")
    if facts["dkim_aligned"] and facts["spf_aligned"]:
        status = "pass"
    elif facts["dkim_aligned"] or facts["spf_aligned"]:
        status = "warn"
    else:
        status = "fail"
    return Check("alignment", status, facts, tuple(advice))


def _mx(names: Iterable[str], resolver: dns.resolver.Resolver) -> Check:
    facts: dict[str, Any] = {}
    advice: list[str] = []
    unknown = False
    for name in dict.fromkeys(names):
        try:
            answer = resolver.resolve(name, "MX", lifetime=DNS_TIMEOUT * 2)
            hosts = sorted((int(r.preference), str(r.exchange).rstrip(".")) for r in answer)
            facts[name] = [host for _, host in hosts]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            facts[name] = []
        except (dns.exception.DNSException, OSError):
            facts[name] = None
            unknown = True
            continue
        if not facts[name] or facts[name] == [""]:
            advice.append(
                f"{name} has no MX record: bounces, replies and DMARC reports to it cannot "
                f'arrive. Publish {name} MX "10 <your mail server>".'
            )
    status = "fail" if advice else "unknown" if unknown else "pass"
    return Check("mx", status, {"mx": facts}, tuple(advice))


def _addresses(host: str, resolver: dns.resolver.Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found: list[str] = []
    for rtype in ("A", "AAAA"):
        try:
            found += [str(r) for r in resolver.resolve(host, rtype, lifetime=DNS_TIMEOUT * 2)]
        except (dns.exception.DNSException, OSError):
            continue
    return found[:MAX_ADDRESSES]


def _ptr(hosts: Sequence[str], resolver: dns.resolver.Resolver) -> tuple[Check, list[str]]:
    if not hosts:
        return Check(
            "ptr",
            "warn",
            {"hosts": []},
            ("No SMTP server is configured (settings: smtp), so the sending addresses are not "
             "known and their reverse DNS was not checked.",),
        ), []  # fmt: skip
    facts: list[dict[str, Any]] = []
    advice: list[str] = []
    all_ips: list[str] = []
    for host in hosts[:MAX_HOSTS]:
        for ip in _addresses(host, resolver):
            all_ips.append(ip)
            address = ipaddress.ip_address(ip)
            if _internal(address):
                facts.append({"host": host, "ip": ip, "ptr": None, "note": "not a public address"})
                continue
            ptr = _reverse(ip, resolver)
            confirmed = bool(ptr) and ip in _addresses(ptr or "", resolver)
            facts.append({"host": host, "ip": ip, "ptr": ptr, "forward_confirmed": confirmed})
            if not ptr:
                advice.append(
                    f"{ip} ({host}) has no PTR record: ask the owner of the address to set its "
                    f"reverse DNS to a name that resolves back to {ip}."
                )
            elif not confirmed:
                advice.append(
                    f"The PTR name of {ip} ({ptr}) does not resolve back to {ip}: publish "
                    f'{ptr} {"AAAA" if address.version == 6 else "A"} "{ip}".'
                )
    if not facts:
        return Check(
            "ptr", "unknown", {"hosts": list(hosts)}, ("The SMTP hosts did not resolve.",)
        ), []
    return Check("ptr", "fail" if advice else "pass", {"addresses": facts}, tuple(advice)), all_ips


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or any(address in network for network in INTERNAL_NETWORKS)
    )


def _reverse(ip: str, resolver: dns.resolver.Resolver) -> str | None:
    try:
        answer = resolver.resolve(dns.reversename.from_address(ip), "PTR", lifetime=DNS_TIMEOUT * 2)
    except (dns.exception.DNSException, OSError):
        return None
    names = [str(r).rstrip(".") for r in answer]
    return names[0] if names else None


def check_domain(
    domain: str,
    *,
    resolver: dns.resolver.Resolver,
    keys: Sequence[KeyToCheck] = (),
    envelope_domain: str | None = None,
    sending_hosts: Sequence[str] = (),
) -> DomainReport:
    """Checks `domain` as a From domain: the SPF of the envelope domain (the From domain when
    `envelope_domain` is None), the DKIM `keys` stmails holds for it, its DMARC policy and the
    alignment of both, the MX of both domains, and the PTR of `sending_hosts`' addresses.

    Never raises on DNS trouble: an unanswered question makes that check `unknown`.
    """
    ptr, sending_ips = _ptr(sending_hosts, resolver)
    public_ips = [ip for ip in sending_ips if not _internal(ipaddress.ip_address(ip))]
    spf = _spf(envelope_domain or domain, resolver, public_ips)
    dkim = _dkim(domain, resolver, keys)
    dmarc, policy = _dmarc(domain, resolver)
    alignment = _alignment(domain, envelope_domain, any(k.status == "active" for k in keys), policy)
    mx = _mx([domain, *([envelope_domain] if envelope_domain else [])], resolver)
    return DomainReport(domain, (spf, dkim, dmarc, alignment, mx, ptr))
