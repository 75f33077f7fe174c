"""A real DNS server on loopback for tests (dnslib), answering from a zone the test writes.

`serve(zone)` runs a UDP (and TCP) server on 127.0.0.1 at a random port and yields the port;
resolvers are aimed at it with `sync_resolver(port)` / `async_resolver(port)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.resolver
from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord
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
        self.records.setdefault((name.lower(), rtype), []).extend(rdata)

    def replace(self, name: str, rtype: str, *rdata: Any) -> None:
        self.records[(name.lower(), rtype)] = list(rdata)

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


@contextmanager
def serve(zone: Zone) -> Iterator[int]:
    """Serves `zone` on 127.0.0.1 (UDP and TCP, one random port); yields the port."""
    # The UDP port is free by construction; the same TCP port may be some other socket's (a
    # client connection's local port), and then another UDP port is tried.
    for attempt in range(20):
        udp = DNSServer(_ZoneResolver(zone), address="127.0.0.1", port=0, logger=_QuietLogger())
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(
                _ZoneResolver(zone), address="127.0.0.1", port=port, tcp=True, logger=_QuietLogger()
            )
            break
        except OSError:
            udp.server.server_close()
            if attempt == 19:
                raise
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        for server in (udp, tcp):
            server.stop()
            server.server.server_close()


def sync_resolver(port: int, timeout: float = 0.5) -> dns.resolver.Resolver:
    """A dnspython resolver that asks only the loopback server at `port`."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout * 2
    resolver.retry_servfail = False
    return resolver


def async_resolver(port: int, timeout: float = 0.5) -> dns.asyncresolver.Resolver:
    """The asynchronous twin of `sync_resolver`."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.timeout = timeout
    resolver.retry_servfail = False
    return resolver
