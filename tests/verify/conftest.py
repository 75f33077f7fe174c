"""Fixtures for the verifier: a real DNS server and scripted SMTP servers on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import pytest
from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSServer


class _QuietLogger:
    """dnslib logs every packet to stdout by default; tests want silence."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@dataclass
class Zone:
    """What the loopback DNS server answers: records by (name, type), or a behaviour by name.

    Names not listed answer NXDOMAIN; a name in ``servfail`` answers SERVFAIL; a name in
    ``silent`` gets no answer at all (the client times out). ``queries`` logs every question.
    """

    records: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, rtype: str, *rdata: Any) -> None:
        self.records.setdefault((name, rtype), []).extend(rdata)

    def names(self) -> set[str]:
        return {name for name, _ in self.records}


class _ZoneResolver:
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.zone.queries.append((name, qtype))
        reply = request.reply()
        if name in self.zone.silent:
            # dnslib sends nothing when the resolver raises DNSError.
            raise DNSError("dropped on purpose")
        if name in self.zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if name not in self.zone.names():
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rdata in self.zone.records.get((name, qtype), []):
            reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
        return reply


@pytest.fixture(scope="module")
def dns_zone() -> Iterator[tuple[Zone, dns.asyncresolver.Resolver]]:
    """A real UDP DNS server on 127.0.0.1 (random port) and a dnspython resolver aimed at it.

    The zone comes with: ``mx.example.net`` (two MX hosts), ``nullmx.example.net`` (RFC 7505),
    ``aonly.example.net`` (A only), ``v6only.example.net`` (AAAA only), ``nothing.example.net``
    (TXT only), ``servfail.example.net`` and ``silent.example.net``. Shared by a module's
    tests (stopping the server takes half a second): tests that count queries clear the log.
    """
    zone = Zone()
    zone.add("mx.example.net", "MX", MX("mx2.example.net", 20), MX("mx1.example.net", 10))
    zone.add("nullmx.example.net", "MX", MX(".", 0))
    zone.add("aonly.example.net", "A", A("127.0.0.1"))
    zone.add("v6only.example.net", "AAAA", AAAA("::1"))
    zone.add("nothing.example.net", "TXT", TXT("v=spf1 -all"))
    zone.servfail.add("servfail.example.net")
    zone.silent.add("silent.example.net")
    server = DNSServer(_ZoneResolver(zone), address="127.0.0.1", port=0, logger=_QuietLogger())
    server.start_thread()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.server.server_address[1]
    resolver.timeout = 0.5
    resolver.retry_servfail = False
    try:
        yield zone, resolver
    finally:
        server.stop()
        server.server.server_close()
