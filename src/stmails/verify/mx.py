"""Mail routing for a domain: MX, then the A/AAAA fallback (RFC 5321 section 5.1).

Verdicts follow what DNS proves: NXDOMAIN, a Null MX (RFC 7505) or a name with neither MX nor
address records cannot receive mail (``invalid``); SERVFAIL, refusals and timeouts prove nothing
(``unknown``, never invalid). Every lookup has a deadline. Answers are cached per domain and
concurrent lookups of one domain share a single query, so bulk work asks once per domain.

The resolver is injected (a ``dns.asyncresolver.Resolver``), so tests point it at a DNS server
on loopback.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

__all__ = ["DomainMail", "MailDomainResolver", "MailStatus"]


class MailStatus(enum.StrEnum):
    """What DNS says about a domain's ability to receive mail."""

    OK = "ok"
    NXDOMAIN = "nxdomain"
    NULL_MX = "null_mx"
    NO_MX = "no_mx"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class DomainMail:
    """A domain's mail routing: ``hosts`` in preference order (the domain itself when only
    A/AAAA records exist, ``implicit`` then being true), or why there is none."""

    status: MailStatus
    hosts: tuple[str, ...] = ()
    implicit: bool = False
    detail: str | None = None


class MailDomainResolver:
    """Looks up where a domain's mail goes, with a per-lookup deadline and a per-domain cache.

    ``timeout`` bounds each lookup as a whole (MX plus the fallback queries). Definite answers
    are cached for ``cache_ttl`` seconds, undecided ones for ``unknown_ttl`` (so a transient
    SERVFAIL is retried soon); ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver | None = None,
        *,
        timeout: float = 5.0,
        cache_ttl: float = 3600.0,
        unknown_ttl: float = 60.0,
        max_cache: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver or dns.asyncresolver.Resolver()
        self.timeout = timeout
        self._cache_ttl = cache_ttl
        self._unknown_ttl = unknown_ttl
        self._max_cache = max_cache
        self._clock = clock
        self._cache: dict[str, tuple[float, DomainMail]] = {}
        self._pending: dict[str, asyncio.Task[DomainMail]] = {}
        self.queries = 0

    async def lookup(self, ascii_domain: str) -> DomainMail:
        """The mail routing of ``ascii_domain`` (A-label form); never raises for DNS failures.

        The query runs in a task of its own that every concurrent caller awaits through a
        shield: a caller that gives up (its deadline passed) does not cancel the lookup for
        the others, and the answer still lands in the cache.
        """
        domain = ascii_domain.lower().rstrip(".")
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        task = self._pending.get(domain)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._lookup_and_cache(domain))
            self._pending[domain] = task
            task.add_done_callback(lambda _: self._pending.pop(domain, None))
        return await asyncio.shield(task)

    async def _lookup_and_cache(self, domain: str) -> DomainMail:
        answer = await self._lookup_with_deadline(domain)
        ttl = self._unknown_ttl if answer.status is MailStatus.UNKNOWN else self._cache_ttl
        if len(self._cache) >= self._max_cache:
            self._cache.clear()
        self._cache[domain] = (self._clock() + ttl, answer)
        return answer

    async def _lookup_with_deadline(self, domain: str) -> DomainMail:
        deadline = self._clock() + self.timeout
        try:
            # dnspython's lifetime bounds each query; this bounds the whole lookup.
            async with asyncio.timeout(self.timeout):
                return await self._lookup(domain, deadline)
        except TimeoutError:
            return DomainMail(MailStatus.UNKNOWN, detail="timeout")

    def _remaining(self, deadline: float) -> float:
        return max(0.01, deadline - self._clock())

    async def _query(self, domain: str, rdtype: str, deadline: float) -> dns.resolver.Answer:
        self.queries += 1
        return await self._resolver.resolve(
            dns.name.from_text(domain),
            rdtype,
            lifetime=self._remaining(deadline),
            search=False,
        )

    async def _lookup(self, domain: str, deadline: float) -> DomainMail:
        try:
            answer = await self._query(domain, "MX", deadline)
        except dns.resolver.NXDOMAIN:
            return DomainMail(MailStatus.NXDOMAIN, detail="the domain does not exist")
        except dns.resolver.NoAnswer:
            return await self._address_fallback(domain, deadline)
        except dns.exception.Timeout:
            return DomainMail(MailStatus.UNKNOWN, detail="timeout")
        except dns.exception.DNSException as exc:
            return DomainMail(MailStatus.UNKNOWN, detail=f"dns failure: {type(exc).__name__}")
        records = sorted((rdata.preference, rdata.exchange) for rdata in answer)
        hosts = tuple(
            exchange.to_text(omit_final_dot=True).lower()
            for _, exchange in records
            if exchange != dns.name.root
        )
        # RFC 7505: a single MX whose exchange is the root (".") says "no mail here".
        if not hosts:
            return DomainMail(MailStatus.NULL_MX, detail="the domain publishes a Null MX")
        return DomainMail(MailStatus.OK, hosts=hosts)

    async def _address_fallback(self, domain: str, deadline: float) -> DomainMail:
        """No MX: the domain itself is the mail host if it has an A or AAAA record."""
        undecided: str | None = None
        for rdtype in ("A", "AAAA"):
            try:
                await self._query(domain, rdtype, deadline)
            except dns.resolver.NXDOMAIN:
                return DomainMail(MailStatus.NXDOMAIN, detail="the domain does not exist")
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.Timeout:
                undecided = "timeout"
            except dns.exception.DNSException as exc:
                undecided = f"dns failure: {type(exc).__name__}"
            else:
                return DomainMail(MailStatus.OK, hosts=(domain,), implicit=True)
        if undecided is not None:
            return DomainMail(MailStatus.UNKNOWN, detail=undecided)
        return DomainMail(MailStatus.NO_MX, detail="the domain has no MX, A or AAAA record")
