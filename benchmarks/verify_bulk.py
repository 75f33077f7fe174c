"""Bulk list cleaning with the offline stages, end to end: addresses per second.

Generates a 1,000,000-line subscriber CSV (email, name, created_at, ...) and times
``stmails verify --offline --file list.csv --out results.csv``: CSV parsing, syntax, disposable,
role and typo stages, and the results CSV, process start-up included. Checks that the output
has one row per input row.

Usage: python benchmarks/verify_bulk.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verify_syntax import STMAILS, generate


def write_list(path: Path, rows: int) -> None:
    """A realistic subscriber export: the address plus the columns such exports carry."""
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "created_at", "status", "lists"])
        for address in generate(rows, seed=7):
            writer.writerow(
                [
                    address,
                    address.partition("@")[0].replace(".", " ").title(),
                    f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z",
                    rng.choice(("enabled", "enabled", "blocklisted")),
                    "newsletter;offers",
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    args = parser.parse_args()
    rows = 50_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        source, results = Path(tmp) / "list.csv", Path(tmp) / "results.csv"
        write_list(source, rows)
        command = [
            str(STMAILS),
            "verify",
            "--offline",
            "--file",
            str(source),
            "--out",
            str(results),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        with results.open(newline="", encoding="utf-8") as produced:
            reader = csv.reader(produced)
            next(reader)
            verdicts: dict[str, int] = {}
            count = 0
            for row in reader:
                count += 1
                verdicts[row[1]] = verdicts.get(row[1], 0) + 1
        size = source.stat().st_size
    if count != rows:
        raise SystemExit(f"expected {rows} result rows, got {count}")
    print("command : stmails verify --offline --file list.csv --out results.csv")
    print(f"input   : {rows:,} rows, {size / 1e6:.1f} MB CSV (seed 7)")
    print(f"elapsed : {elapsed:.2f} s, {rows / elapsed:,.0f} addresses/s (start-up included)")
    print(f"verdicts: {verdicts}")
    print(f"python  : {sys.version.split()[0]}; target >= 20,000 addresses/s")


if __name__ == "__main__":
    main()
