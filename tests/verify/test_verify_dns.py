"""The DNS stage against a real DNS server on loopback (see the ``dns_zone`` fixture)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import dns.asyncresolver
from dnslib import MX
from typer.testing import CliRunner

from stmails.cli import commands  # noqa: F401  (registers the commands on the app)
from stmails.cli.main import app
from stmails.verify import (
    DomainMail,
    MailDomainResolver,
    MailStatus,
    OfflineVerifier,
    Reason,
    Verdict,
    VerificationResult,
    Verifier,
)
from stmails.verify.pipeline import averify_on_the_way_in

# The fixture's zone object (tests/verify/conftest.py) and the resolver aimed at its server.
ZoneFixture = tuple[Any, dns.asyncresolver.Resolver]


def test_mx_hosts_come_in_preference_order(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    mail = asyncio.run(MailDomainResolver(resolver).lookup("MX.example.net"))
    assert mail.status is MailStatus.OK
    assert mail.hosts == ("mx1.example.net", "mx2.example.net")
    assert not mail.implicit


def test_address_records_are_the_fallback_and_their_absence_is_no_mx(
    dns_zone: ZoneFixture,
) -> None:
    _, resolver = dns_zone
    lookups = MailDomainResolver(resolver)

    async def run() -> list[DomainMail]:
        return [
            await lookups.lookup(name)
            for name in ("aonly.example.net", "v6only.example.net", "nothing.example.net")
        ]

    a_only, v6_only, nothing = asyncio.run(run())
    assert (a_only.status, a_only.hosts, a_only.implicit) == (
        MailStatus.OK, ("aonly.example.net",), True,
    )  # fmt: skip
    assert v6_only.status is MailStatus.OK
    assert nothing.status is MailStatus.NO_MX


def test_null_mx_and_nxdomain_are_definite(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    lookups = MailDomainResolver(resolver)
    assert asyncio.run(lookups.lookup("nullmx.example.net")).status is MailStatus.NULL_MX
    assert asyncio.run(lookups.lookup("missing.example.net")).status is MailStatus.NXDOMAIN


def test_servfail_and_silence_are_unknown_and_the_deadline_holds(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    lookups = MailDomainResolver(resolver, timeout=0.3)
    assert asyncio.run(lookups.lookup("servfail.example.net")).status is MailStatus.UNKNOWN

    async def timed() -> tuple[DomainMail, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        mail = await lookups.lookup("silent.example.net")
        return mail, loop.time() - started

    mail, elapsed = asyncio.run(timed())
    assert mail.status is MailStatus.UNKNOWN
    assert mail.detail == "timeout"
    # Far below the 5 s a default resolver would spend; loose for a busy machine.
    assert elapsed < 1.5


def test_one_query_per_domain_for_concurrent_and_repeated_lookups(dns_zone: ZoneFixture) -> None:
    zone, resolver = dns_zone
    zone.queries.clear()
    lookups = MailDomainResolver(resolver)

    async def run() -> None:
        await asyncio.gather(*(lookups.lookup("mx.example.net") for _ in range(20)))
        await lookups.lookup("mx.example.net")

    asyncio.run(run())
    assert zone.queries.count(("mx.example.net", "MX")) == 1


def test_the_pipeline_maps_dns_answers_to_verdicts(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    verifier = Verifier(OfflineVerifier(), dns=MailDomainResolver(resolver, timeout=0.5))

    async def run() -> dict[str, VerificationResult]:
        names = ["mx", "nullmx", "missing", "nothing", "servfail", "aonly"]
        return {n: await verifier.verify(f"jane@{n}.example.net") for n in names}

    results = asyncio.run(run())
    expected = {
        "mx": (Verdict.VALID, ()),
        "nullmx": (Verdict.INVALID, (Reason.NULL_MX,)),
        "missing": (Verdict.INVALID, (Reason.NXDOMAIN,)),
        "nothing": (Verdict.INVALID, (Reason.NO_MX,)),
        "servfail": (Verdict.UNKNOWN, (Reason.TIMEOUT,)),
        "aonly": (Verdict.VALID, ()),
    }
    got = {n: (r.result, r.reasons) for n, r in results.items()}
    assert got == expected
    assert results["mx"].mx == ("mx1.example.net", "mx2.example.net")


def test_a_role_address_at_a_domain_without_mail_is_invalid(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    verifier = Verifier(dns=MailDomainResolver(resolver))
    result = asyncio.run(verifier.verify("info@nullmx.example.net"))
    assert result.result is Verdict.INVALID
    assert result.reasons == (Reason.ROLE, Reason.NULL_MX)


def test_the_per_address_deadline_returns_unknown_in_time(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    verifier = Verifier(dns=MailDomainResolver(resolver, timeout=5.0))

    async def run() -> tuple[VerificationResult, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await verifier.verify("jane@silent.example.net", deadline=0.2)
        return result, loop.time() - started

    result, elapsed = asyncio.run(run())
    assert result.result is Verdict.UNKNOWN
    assert Reason.TIMEOUT in result.reasons
    # The lookup itself would take 5 s; loose for a busy machine.
    assert elapsed < 2.0


def test_bulk_groups_by_domain_and_keeps_the_input_order(dns_zone: ZoneFixture) -> None:
    zone, resolver = dns_zone
    zone.queries.clear()
    verifier = Verifier(dns=MailDomainResolver(resolver))
    addresses = [f"user{i}@{d}.example.net" for i in range(10) for d in ("mx", "nullmx")]
    addresses.insert(3, "not an address")
    seen: list[int] = []
    results = asyncio.run(
        verifier.verify_many(addresses, concurrency=2, on_result=lambda i, r: seen.append(i))
    )
    assert [r.address for r in results] == addresses
    assert sorted(seen) == list(range(len(addresses)))
    assert results[3].result is Verdict.INVALID
    assert {r.result for r in results if "@nullmx" in r.address} == {Verdict.INVALID}
    assert zone.queries.count(("mx.example.net", "MX")) == 1
    assert zone.queries.count(("nullmx.example.net", "MX")) == 1


def test_the_async_intake_gate_uses_dns(dns_zone: ZoneFixture) -> None:
    _, resolver = dns_zone
    verifier = Verifier(dns=MailDomainResolver(resolver))
    gate = asyncio.run(averify_on_the_way_in("jane@missing.example.net", verifier))
    assert gate == (False, ("nxdomain",))


def test_a_caller_that_gives_up_does_not_cancel_the_lookup_for_others(
    dns_zone: ZoneFixture,
) -> None:
    _, resolver = dns_zone
    verifier = Verifier(dns=MailDomainResolver(resolver, timeout=0.4))

    async def run() -> list[VerificationResult]:
        impatient = verifier.verify("a@silent.example.net", deadline=0.05)
        patient = verifier.verify("b@silent.example.net", deadline=3)
        return list(await asyncio.gather(impatient, patient))

    impatient, patient = asyncio.run(run())
    assert impatient.detail == "the deadline passed"
    # The patient caller got the lookup's own answer: a DNS timeout, not a cancellation.
    assert (patient.result, patient.detail) == (Verdict.UNKNOWN, "timeout")


def test_the_command_runs_the_dns_stage_against_a_given_nameserver(
    dns_zone: ZoneFixture, tmp_path: Path
) -> None:
    _, resolver = dns_zone
    server = f"127.0.0.1:{resolver.port}"
    source = tmp_path / "list.csv"
    source.write_text(
        "email\n" + "".join(f"u{i}@mx.example.net\n" for i in range(5)) + "x@nullmx.example.net\n"
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        ["verify", "--nameserver", server, "--dns-timeout", "1", "--file", str(source),
         "--out", str(out), "--format", "jsonl"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["result"] for r in records] == ["valid"] * 5 + ["invalid"]
    assert records[-1]["reasons"] == ["null_mx"]
    single = CliRunner().invoke(
        app, ["verify", "--nameserver", server, "--format", "jsonl", "a@missing.example.net"]
    )
    assert json.loads(single.output)["reasons"] == ["nxdomain"]


def test_the_command_probes_no_private_mail_host_unless_asked(dns_zone: ZoneFixture) -> None:
    # Issue 11: a domain whose owner points its MX at this machine (or its network) must not
    # turn `stmails verify --smtp` into a probe of local services.
    zone, resolver = dns_zone
    zone.add("loopback-mx.example.net", "MX", MX("localhost", 10))
    server = f"127.0.0.1:{resolver.port}"
    command = ["verify", "--nameserver", server, "--smtp", "--timeout", "5", "--format", "jsonl"]
    refused = CliRunner().invoke(app, [*command, "someone@loopback-mx.example.net"])
    assert refused.exit_code == 0, refused.output
    record = json.loads(refused.output)
    assert "not a public address" in record["detail"], record
    asked = CliRunner().invoke(
        app, [*command, "--allow-private-targets", "someone@loopback-mx.example.net"]
    )
    assert asked.exit_code == 0, asked.output
    assert "not a public address" not in json.loads(asked.output)["detail"]
