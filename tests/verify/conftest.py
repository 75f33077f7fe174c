"""Fixtures for the verifier: a real DNS server on loopback (tests/dnszone.py)."""

from __future__ import annotations

from collections.abc import Iterator

import dns.asyncresolver
import pytest
from dnslib import AAAA, MX, TXT, A

from dnszone import Zone, async_resolver, serve


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
    with serve(zone) as port:
        yield zone, async_resolver(port)
