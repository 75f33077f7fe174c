"""`stmails verify`: verify addresses given as arguments, on stdin (``-``) or in a CSV file.

Heavy imports (Rich, dnspython, asyncio machinery) happen inside the command so that the
streaming path (``--offline --format jsonl -``) starts quickly.
"""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stmails.cli.main import app

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator
    from typing import TextIO

    from stmails.verify import OfflineVerifier, VerificationResult, Verifier
    from stmails.verify.offline import Outcomes


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
        typer.Option(
            "--format", help="table, json, jsonl or csv (default: table for arguments, else csv)."
        ),
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
    allow_private_targets: Annotated[
        bool,
        typer.Option(
            "--allow-private-targets",
            help="Let --smtp probe mail hosts on loopback, private or link-local addresses.",
        ),
    ] = False,
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
    # A table suits a few addresses typed on the command line; lists default to CSV.
    listed = out is not None or file is not None or "-" in given
    fmt = output_format or (OutputFormat.CSV if listed else OutputFormat.TABLE)
    offline_verifier = OfflineVerifier(syntax_policy)

    # The streaming path: stdin to stdout, one record per line, bounded memory.
    if offline and fmt is OutputFormat.JSONL and given == ["-"] and file is None and out is None:
        from stmails.verify.stream import offline_jsonl_stream

        try:
            offline_jsonl_stream(sys.stdin.buffer, sys.stdout.buffer, offline_verifier)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, and keep Python's own flush at
            # exit from failing again on the closed pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return

    verifier = (
        None
        if offline
        else _network_verifier(
            offline_verifier,
            smtp,
            helo_name,
            mail_from,
            nameserver,
            dns_timeout,
            allow_private_targets,
        )
    )
    total = len(given) - given.count("-") + (_count_lines(file) if file is not None else 0)
    items = _collect(given, file, column)
    sink = out.open("w", encoding="utf-8", errors="surrogateescape", newline="") if out else None
    try:
        writer = _ResultWriter(fmt, sink or sys.stdout)
        verdicts, reasons = _run(
            items, total, offline_verifier, verifier, writer, timeout, concurrency
        )
        writer.close()
    finally:
        if sink is not None:
            sink.close()
    if out is not None or sum(verdicts.values()) > 1:
        _summary(verdicts, reasons)


CHUNK = 5_000


def _count_lines(file: Path) -> int:
    """Lines in ``file`` (the progress bar's total; a header line makes it one too many)."""
    try:
        with file.open("rb") as source:
            return sum(block.count(b"\n") for block in iter(lambda: source.read(1 << 20), b""))
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="--file") from None


def _collect(given: list[str], file: Path | None, column: str | None) -> Iterator[str]:
    """The addresses to verify, lazily: arguments, stdin for '-', then the file's column."""
    for item in given:
        if item == "-":
            yield from (line.rstrip("\r\n") for line in sys.stdin)
        else:
            yield item
    if file is not None:
        from stmails.verify.export import read_address_csv

        try:
            with file.open(newline="", encoding="utf-8", errors="surrogateescape") as source:
                yield from read_address_csv(source, column)
        except OSError as exc:
            raise typer.BadParameter(str(exc), param_hint="--file") from None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--column") from None


class _ResultWriter:
    """Writes results as they come, in the chosen format (a table is printed at the end)."""

    def __init__(self, fmt: OutputFormat, stream: TextIO) -> None:
        import csv

        self.fmt = fmt
        self._stream = stream
        self._table: list[VerificationResult] = []
        self._first = True
        self._csv = csv.writer(stream, lineterminator="\n")
        if fmt is OutputFormat.CSV:
            from stmails.verify.export import CSV_FIELDS

            self._csv.writerow(CSV_FIELDS)
        elif fmt is OutputFormat.JSON:
            stream.write('{"data": [')

    @property
    def renders_lines(self) -> bool:
        """Whether the format is one line per address (CSV or JSON lines)."""
        return self.fmt in (OutputFormat.CSV, OutputFormat.JSONL)

    def write_lines(self, lines: list[str]) -> None:
        """Writes pre-rendered lines (see :attr:`renders_lines`)."""
        if lines:
            self._stream.write("\n".join(lines) + "\n")

    def write(self, results: list[VerificationResult]) -> None:
        import json

        from stmails.verify.export import result_row
        from stmails.verify.offline import record_json

        if self.fmt is OutputFormat.TABLE:
            self._table.extend(results)
        elif self.fmt is OutputFormat.JSONL:
            self._stream.writelines(record_json(r) + "\n" for r in results)
        elif self.fmt is OutputFormat.CSV:
            self._csv.writerows(result_row(r) for r in results)
        else:
            for result in results:
                self._stream.write(("" if self._first else ", ") + json.dumps(result.to_dict()))
                self._first = False

    def close(self) -> None:
        if self.fmt is OutputFormat.TABLE:
            _table(self._table)
        elif self.fmt is OutputFormat.JSON:
            self._stream.write("]}\n")
        self._stream.flush()


def _network_verifier(
    offline_verifier: OfflineVerifier,
    smtp: bool,
    helo_name: str,
    mail_from: str,
    nameservers: list[str] | None,
    dns_timeout: float,
    allow_private_targets: bool = False,
) -> Verifier:
    import dns.asyncresolver
    import dns.resolver

    from stmails.verify import MailDomainResolver, SmtpProber, Verifier

    try:
        resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    except dns.resolver.NoResolverConfiguration:
        raise typer.BadParameter(
            "this host has no DNS configuration; give --nameserver or use --offline"
        ) from None
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
        SmtpProber(
            helo_name=helo_name,
            mail_from=mail_from or f"verify@{helo_name}",
            allow_private_targets=allow_private_targets,
        )
        if smtp
        else None
    )
    return Verifier(
        offline_verifier,
        dns=MailDomainResolver(resolver, timeout=dns_timeout),
        smtp=prober,
    )


def _run(
    items: Iterator[str],
    total: int,
    offline_verifier: OfflineVerifier,
    verifier: Verifier | None,
    writer: _ResultWriter,
    timeout: float,
    concurrency: int,
) -> tuple[Counter[str], Counter[str]]:
    """Verifies ``items`` a chunk at a time (bounded memory), writing and counting results."""
    import asyncio
    from collections import Counter
    from itertools import islice

    from rich.console import Console
    from rich.progress import Progress

    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    console = Console(stderr=True)
    with Progress(transient=True, disable=total <= 1, console=console) as progress:
        task = progress.add_task("verifying", total=total)

        def record(results: list[VerificationResult]) -> None:
            writer.write(results)
            verdicts.update(r.result.value for r in results)
            reasons.update(reason.value for r in results for reason in r.reasons)
            progress.advance(task, len(results))

        if verifier is None and writer.renders_lines:
            # Bulk offline work to CSV or JSON lines: the verifier renders the lines itself
            # from its per-domain cache, without building a result object per address.
            render = (
                offline_verifier.csv_lines
                if writer.fmt is OutputFormat.CSV
                else offline_verifier.jsonl
            )
            while chunk := list(islice(items, CHUNK)):
                outcomes: Outcomes = []
                writer.write_lines(render(chunk, outcomes))
                verdicts.update(verdict.value for verdict, _ in outcomes)
                reasons.update(reason.value for _, found in outcomes for reason in found)
                progress.advance(task, len(chunk))
            return verdicts, reasons
        if verifier is None:
            while chunk := list(islice(items, CHUNK)):
                record([offline_verifier.verify(item) for item in chunk])
            return verdicts, reasons

        # One event loop for the whole run: the DNS and catch-all caches and the per-host
        # limits live in it.
        async def run_network(network: Verifier) -> None:
            while chunk := list(islice(items, CHUNK)):
                if len(chunk) == 1:
                    record([await network.verify(chunk[0], deadline=timeout)])
                else:
                    record(await network.verify_many(chunk, concurrency=concurrency))

        asyncio.run(run_network(verifier))
    return verdicts, reasons


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


def _summary(verdicts: Counter[str], reasons: Counter[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("result", "count", title=f"{sum(verdicts.values())} addresses")
    for name in ("valid", "risky", "unknown", "invalid"):
        table.add_row(name, str(verdicts.get(name, 0)))
    for name, count in reasons.most_common():
        table.add_row(f"  {name}", str(count))
    Console(stderr=True).print(table)
