"""`stmails verify`: verify addresses given as arguments, on stdin (``-``) or in a CSV file.

Heavy imports (Rich, dnspython, asyncio machinery) happen inside the command so that the
streaming path (``--offline --format jsonl -``) starts quickly.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

if TYPE_CHECKING:
    from stmails.verify import OfflineVerifier, VerificationResult, Verifier


class OutputFormat(enum.StrEnum):
    """How results are written."""

    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


@app.command("verify")
def verify_command(
    addresses: Annotated[
        list[str] | None, typer.Argument(help="Addresses to verify; '-' reads one per line.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="CSV (or one-per-line) list to verify.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write results here (CSV unless --format).")
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option("--format", help="table, json, jsonl or csv (default: table, csv for --out)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Only the stages that need no network.")
    ] = False,
    policy: Annotated[
        str, typer.Option("--policy", help="Syntax policy: mailing (default) or rfc5321.")
    ] = "mailing",
    column: Annotated[
        str | None, typer.Option("--column", help="CSV column holding the address.")
    ] = None,
    smtp: Annotated[
        bool, typer.Option("--smtp/--no-smtp", help="Probe mailboxes over SMTP (port 25).")
    ] = False,
    helo_name: Annotated[
        str, typer.Option("--helo-name", help="Name sent in EHLO when probing.")
    ] = "localhost",
    mail_from: Annotated[
        str, typer.Option("--mail-from", help="Envelope sender used when probing.")
    ] = "",
    nameserver: Annotated[
        list[str] | None, typer.Option("--nameserver", help="DNS server (IP[:port]); repeatable.")
    ] = None,
    dns_timeout: Annotated[float, typer.Option("--dns-timeout", help="Seconds per lookup.")] = 5.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per address (all network stages).")
    ] = 30.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Domains verified at once.")
    ] = 16,
) -> None:
    """Verify email addresses: syntax, disposable, role, typo, DNS and optionally SMTP."""
    from stmails.verify import OfflineVerifier, Policy

    try:
        syntax_policy = Policy(policy)
    except ValueError:
        raise typer.BadParameter("use mailing or rfc5321", param_hint="--policy") from None
    given = list(addresses or [])
    if not given and file is None:
        raise typer.BadParameter("give addresses, '-' for stdin, or --file")
    fmt = output_format or (OutputFormat.CSV if out is not None else OutputFormat.TABLE)
    offline_verifier = OfflineVerifier(syntax_policy)

    # The streaming path: stdin to stdout, one record per line, bounded memory.
    if offline and fmt is OutputFormat.JSONL and given == ["-"] and file is None and out is None:
        from stmails.verify.stream import offline_jsonl_stream

        offline_jsonl_stream(sys.stdin.buffer, sys.stdout.buffer, offline_verifier)
        sys.stdout.flush()
        return

    items = _collect(given, file, column)
    verifier = (
        None
        if offline
        else _network_verifier(
            offline_verifier, smtp, helo_name, mail_from, nameserver, dns_timeout
        )
    )
    results = _run(
        items, offline_verifier, verifier, timeout, concurrency, show_progress=len(items) > 1
    )
    _emit(results, fmt, out)
    if out is not None or len(results) > 1:
        _summary(results)


def _collect(given: list[str], file: Path | None, column: str | None) -> list[str]:
    items: list[str] = []
    for item in given:
        if item == "-":
            items.extend(line.rstrip("\r\n") for line in sys.stdin)
        else:
            items.append(item)
    if file is not None:
        from stmails.verify.export import read_address_csv

        try:
            with file.open(newline="", encoding="utf-8", errors="surrogateescape") as source:
                items.extend(read_address_csv(source, column))
        except OSError as exc:
            raise typer.BadParameter(str(exc), param_hint="--file") from None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--column") from None
    return items


def _network_verifier(
    offline_verifier: OfflineVerifier,
    smtp: bool,
    helo_name: str,
    mail_from: str,
    nameservers: list[str] | None,
    dns_timeout: float,
) -> Verifier:
    import dns.asyncresolver

    from stmails.verify import MailDomainResolver, SmtpProber, Verifier

    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        # "IP:port" (IPv4) sets the port for all servers; a bare IPv6 address has many colons.
        hosts = []
        for server in nameservers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            hosts.append(host)
            if port:
                resolver.port = int(port)
        resolver.nameservers = hosts
    prober = (
        SmtpProber(helo_name=helo_name, mail_from=mail_from or f"verify@{helo_name}")
        if smtp
        else None
    )
    return Verifier(
        offline_verifier,
        dns=MailDomainResolver(resolver, timeout=dns_timeout),
        smtp=prober,
    )


def _run(
    items: list[str],
    offline_verifier: OfflineVerifier,
    verifier: Verifier | None,
    timeout: float,
    concurrency: int,
    *,
    show_progress: bool,
) -> list[VerificationResult]:
    import asyncio

    from rich.console import Console
    from rich.progress import Progress

    with Progress(
        transient=True, disable=not show_progress, console=Console(stderr=True)
    ) as progress:
        task = progress.add_task("verifying", total=len(items))
        if verifier is None:
            results = []
            for item in items:
                results.append(offline_verifier.verify(item))
                progress.advance(task)
            return results

        def advance(_index: int, _result: VerificationResult) -> None:
            progress.advance(task)

        async def run_all() -> list[VerificationResult]:
            assert verifier is not None
            if len(items) == 1:
                return [await verifier.verify(items[0], deadline=timeout)]
            return await verifier.verify_many(items, concurrency=concurrency, on_result=advance)

        return asyncio.run(run_all())


def _emit(results: list[VerificationResult], fmt: OutputFormat, out: Path | None) -> None:
    import io
    import json

    from stmails.verify.export import results_json, write_results_csv
    from stmails.verify.offline import record_json

    if fmt is OutputFormat.TABLE and out is None:
        _table(results)
        return
    buffer = io.StringIO()
    if fmt is OutputFormat.JSONL:
        buffer.writelines(record_json(r) + "\n" for r in results)
    elif fmt is OutputFormat.JSON:
        buffer.write(
            results_json(results) if len(results) != 1 else json.dumps(results[0].to_dict())
        )
        buffer.write("\n")
    else:
        write_results_csv(results, buffer)
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        out.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogateescape")


def _table(results: list[VerificationResult]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("address", "result", "reasons", "suggestion", "detail")
    for r in results:
        table.add_row(
            escape(r.address),
            r.result.value,
            ", ".join(reason.value for reason in r.reasons),
            escape(r.suggestion or ""),
            escape(r.detail or ""),
        )
    Console().print(table)


def _summary(results: list[VerificationResult]) -> None:
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    verdicts = Counter(r.result.value for r in results)
    reasons = Counter(reason.value for r in results for reason in r.reasons)
    table = Table("result", "count", title=f"{len(results)} addresses")
    for name in ("valid", "risky", "unknown", "invalid"):
        table.add_row(name, str(verdicts.get(name, 0)))
    for name, count in reasons.most_common():
        table.add_row(f"  {name}", str(count))
    Console(stderr=True).print(table)
