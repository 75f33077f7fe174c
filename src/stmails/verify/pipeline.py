"""The whole verifier: offline stages, then DNS, then (optionally) the SMTP probe.

Each network stage is optional and injected. A deadline bounds the network stages of one
verification: when it passes, the answer is the offline verdict with ``unknown``/``timeout``
rather than a late one. ``verify_many`` groups addresses by domain, so a list asks DNS once
per domain and tests catch-all once per domain, and bounds how many domains are in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stmails.verify.mx import DomainMail, MailDomainResolver, MailStatus
from stmails.verify.offline import OfflineVerifier
from stmails.verify.result import Reason, Verdict, VerificationResult, combine
from stmails.verify.smtp import SmtpProber
from stmails.verify.syntax import Policy, check_syntax

__all__ = ["IntakePolicy", "Verifier", "averify_on_the_way_in", "verify_on_the_way_in"]

_DNS_REASONS = {
    MailStatus.NXDOMAIN: Reason.NXDOMAIN,
    MailStatus.NULL_MX: Reason.NULL_MX,
    MailStatus.NO_MX: Reason.NO_MX,
    MailStatus.UNKNOWN: Reason.TIMEOUT,
}

ProgressCallback = Callable[[int, VerificationResult], None]


def _extend(
    result: VerificationResult,
    reasons: Sequence[Reason],
    stage: str,
    **changes: Any,
) -> VerificationResult:
    """A copy of ``result`` with more reasons (deduplicated, in order) and the verdict redone."""
    merged = tuple(dict.fromkeys((*result.reasons, *reasons)))
    return dataclasses.replace(
        result,
        reasons=merged,
        result=combine(merged),
        stages=(*result.stages, stage),
        **changes,
    )


class Verifier:
    """Verifies addresses with the configured stages (``dns`` and ``smtp`` may be None)."""

    def __init__(
        self,
        offline: OfflineVerifier | None = None,
        *,
        dns: MailDomainResolver | None = None,
        smtp: SmtpProber | None = None,
    ) -> None:
        self.offline = offline or OfflineVerifier()
        self.dns = dns
        self.smtp = smtp

    async def verify(self, address: str, *, deadline: float | None = None) -> VerificationResult:
        """Verifies one address; ``deadline`` (seconds) bounds the network stages."""
        result = self.offline.verify(address)
        if self.dns is None or self._ascii_domain(result) is None:
            return result
        try:
            async with asyncio.timeout(deadline):
                return await self._network_stages(result)
        except TimeoutError:
            return _extend(result, (Reason.TIMEOUT,), "deadline", detail="the deadline passed")

    async def verify_many(
        self,
        addresses: Sequence[str],
        *,
        concurrency: int = 16,
        on_result: ProgressCallback | None = None,
    ) -> list[VerificationResult]:
        """Verifies a list (results in input order); ``on_result(index, result)`` as each ends.

        Addresses are grouped by domain: one DNS lookup and one catch-all test per domain,
        and at most ``concurrency`` domains in flight at once.
        """
        results: list[VerificationResult | None] = [None] * len(addresses)
        groups: dict[str, list[tuple[int, VerificationResult]]] = {}
        for index, address in enumerate(addresses):
            offline = self.offline.verify(address)
            domain = self._ascii_domain(offline)
            if domain is None or self.dns is None:
                results[index] = offline
                if on_result:
                    on_result(index, offline)
            else:
                groups.setdefault(domain, []).append((index, offline))
        slots = asyncio.Semaphore(max(1, concurrency))

        async def run_group(domain: str, members: list[tuple[int, VerificationResult]]) -> None:
            async with slots:
                assert self.dns is not None
                mail = await self.dns.lookup(domain)
                for index, offline in members:
                    done = await self._after_dns(offline, domain, mail)
                    results[index] = done
                    if on_result:
                        on_result(index, done)

        async with asyncio.TaskGroup() as group:
            for domain, members in groups.items():
                group.create_task(run_group(domain, members))
        return [r for r in results if r is not None]

    def _ascii_domain(self, result: VerificationResult) -> str | None:
        """The A-label domain of a valid hostname address (None for literals and invalid)."""
        if not result.syntax_valid:
            return None
        domain = check_syntax(result.address, self.offline.policy).ascii_domain
        return None if domain is None or domain.startswith("[") else domain

    async def _network_stages(self, result: VerificationResult) -> VerificationResult:
        domain = self._ascii_domain(result)
        if domain is None or self.dns is None:
            return result
        mail = await self.dns.lookup(domain)
        return await self._after_dns(result, domain, mail)

    async def _after_dns(
        self, result: VerificationResult, domain: str, mail: DomainMail
    ) -> VerificationResult:
        if mail.status is not MailStatus.OK:
            return _extend(result, (_DNS_REASONS[mail.status],), "dns", detail=mail.detail)
        result = _extend(result, (), "dns", mx=mail.hosts)
        if self.smtp is None or result.result is Verdict.INVALID:
            return result
        syntax = check_syntax(result.address, self.offline.policy)
        probe_address = f"{syntax.local}@{domain}"
        outcome = await self.smtp.probe(probe_address, domain, mail.hosts)
        return _extend(
            result,
            outcome.reasons,
            "smtp",
            smtp_reply=outcome.reply,
            retry_after=outcome.retry_after,
            detail=outcome.detail or result.detail,
        )


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """How subscriber creation and imports use the verifier (the setting behind the gate).

    ``syntax`` is the syntax policy; an address whose verdict is in ``reject`` is refused;
    any other address is accepted and its reason codes are returned as flags.
    """

    syntax: Policy = Policy.MAILING
    reject: frozenset[Verdict] = frozenset({Verdict.INVALID})


_INTAKE_VERIFIERS: dict[Policy, OfflineVerifier] = {}


def verify_on_the_way_in(
    address: str, policy: IntakePolicy | None = None
) -> tuple[bool, tuple[str, ...]]:
    """The sign-up/import gate over the offline stages: returns (accept, flags).

    By default only a proven ``invalid`` address is refused; ``risky`` ones are accepted with
    their reason codes (``disposable``, ``role``, ``typo``) as flags, so the caller can tag the
    subscriber instead of losing them. Synchronous and network-free: it takes microseconds and
    is safe to call inside a database transaction. For the DNS stage use
    :func:`averify_on_the_way_in`.
    """
    policy = policy or IntakePolicy()
    verifier = _INTAKE_VERIFIERS.get(policy.syntax)
    if verifier is None:
        verifier = _INTAKE_VERIFIERS[policy.syntax] = OfflineVerifier(policy.syntax)
    return _gate(verifier.verify(address), policy)


async def averify_on_the_way_in(
    address: str, verifier: Verifier, policy: IntakePolicy | None = None, *, deadline: float = 2.0
) -> tuple[bool, tuple[str, ...]]:
    """:func:`verify_on_the_way_in` with the verifier's network stages, bounded by ``deadline``."""
    return _gate(await verifier.verify(address, deadline=deadline), policy or IntakePolicy())


def _gate(result: VerificationResult, policy: IntakePolicy) -> tuple[bool, tuple[str, ...]]:
    return result.result not in policy.reject, tuple(reason.value for reason in result.reasons)
