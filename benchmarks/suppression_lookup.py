"""Suppression checks as the list grows: does a 10-million-entry list slow sending down?

Fills one SQLite database (WAL, as `stmails serve` uses it) with global address entries in
steps (100,000, then 1,000,000, then 10,000,000 by default; a few domain entries too), and at
each size measures, on the same random mix of addresses (10% suppressed, 90% not):

- the campaign sender's batch check, `check_batch_detail()` on 1,000 addresses at a time: time
  per address (median batch, and the whole run);
- the single check of the transactional paths (`POST /api/tx`, the SMTP relay's RCPT TO),
  `find()` in a read session of its own: p50 and p99 per call.

It prints each figure and its ratio to the smallest size. Both checks go through the unique index
on the address digest (a B-tree: one probe per address, whatever the table holds), so the
ratios should stay near 1; what grows is the file, which must fit the OS page cache to stay so.

    .venv/bin/python benchmarks/suppression_lookup.py                       # up to 10,000,000
    .venv/bin/python benchmarks/suppression_lookup.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stmails.db.engine import make_engine, read_only, session_factory
from stmails.db.models import Base
from stmails.services.suppression import (
    SuppressionInput,
    check_batch_detail,
    find,
    upsert_many,
)

BATCH = 1000


def address(n: int) -> str:
    return f"person{n}@domain{n % 5000}.example"


def fill(factory: sessionmaker[Session], start: int, stop: int) -> None:
    """Global address entries `start` .. `stop - 1`, written by the bulk upsert that
    `PUT /api/suppressions` uses, 200,000 per transaction."""
    step = 200_000
    for first in range(start, stop, step):
        entries = []
        for n in range(first, min(stop, first + step)):
            email = address(n)
            digest = hashlib.sha256(email.encode()).digest()
            entries.append(
                SuppressionInput(
                    email, digest, None, "global", 0, "hard_bounce", "benchmark", "", None
                )
            )
        with factory() as session, session.begin():
            upsert_many(session, entries)


def sample(rng: random.Random, size: int, count: int) -> list[str]:
    """`count` addresses: one in ten suppressed (among the first `size`), the rest not."""
    return [
        address(rng.randrange(size))
        if rng.random() < 0.1
        else f"nobody{rng.getrandbits(40)}@x.example"
        for _ in range(count)
    ]


def measure(
    reader: sessionmaker[Session], size: int, batches: int, singles: int
) -> dict[str, float]:
    rng = random.Random(size)
    # One warm-up batch: the first read of a grown file pays for opening its pages.
    with reader() as session:
        check_batch_detail(session, sample(rng, size, BATCH))
    per_batch: list[float] = []
    found = 0
    started = time.perf_counter()
    for _ in range(batches):
        emails = sample(rng, size, BATCH)
        t0 = time.perf_counter()
        with reader() as session:
            found += len(check_batch_detail(session, emails))
        per_batch.append(time.perf_counter() - t0)
    batch_total = time.perf_counter() - started
    single: list[float] = []
    for email in sample(rng, size, singles):
        t0 = time.perf_counter()
        with reader() as session:
            find(session, email, list_ids=[])
        single.append(time.perf_counter() - t0)
    single.sort()
    return {
        "batch_median_us": statistics.median(per_batch) / BATCH * 1e6,
        "batch_all_us": batch_total / (batches * BATCH) * 1e6,
        "found_share": found / (batches * BATCH),
        "single_p50_us": single[len(single) // 2] * 1e6,
        "single_p99_us": single[int(len(single) * 0.99)] * 1e6,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 per size")
    parser.add_argument("--singles", type=int, default=3000, help="single checks per size")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)

    results: list[tuple[int, dict[str, float], float, int]] = []
    with tempfile.TemporaryDirectory(prefix="stmails-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'lookup.db'}"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        writer = session_factory(engine)
        reader = read_only(writer)
        filled = 0
        for size in sizes:
            t0 = time.perf_counter()
            fill(writer, filled, size)
            load = time.perf_counter() - t0
            filled = size
            figures = measure(reader, size, args.batches, args.singles)
            # The database and its write-ahead log (bulk writes checkpoint every 128 MiB).
            file_mib = sum(f.stat().st_size for f in Path(folder).glob("lookup.db*")) // 2**20
            results.append((size, figures, load, file_mib))
            print(
                f"  {size:>12,} entries ({file_mib:,} MiB, loaded in {load:.0f} s): batch "
                f"{figures['batch_median_us']:.1f} µs/address (median batch), "
                f"single p50 {figures['single_p50_us']:.0f} µs p99 "
                f"{figures['single_p99_us']:.0f} µs",
                flush=True,
            )
        engine.dispose()

    first = results[0][1]
    print("suppression_lookup benchmark")
    print(
        f"  how: SQLite (WAL) in a temp dir, global address entries, batches of {BATCH:,} "
        f"addresses (10% suppressed) x {args.batches}, {args.singles:,} single checks each in "
        f"its own read session; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average (1 min) {os.getloadavg()[0]:.1f}"
    )
    print(
        "  entries       | batch µs/address (median, all) | single p50 / p99 µs | "
        "ratio to the smallest (batch, single p50)"
    )
    for size, figures, _, _ in results:
        print(
            f"  {size:>12,} | {figures['batch_median_us']:8.1f} {figures['batch_all_us']:8.1f}"
            f"          | {figures['single_p50_us']:7.0f} / {figures['single_p99_us']:7.0f}"
            f"     | {figures['batch_median_us'] / first['batch_median_us']:.2f}, "
            f"{figures['single_p50_us'] / first['single_p50_us']:.2f}"
        )
    shares = {round(f["found_share"], 2) for _, f, _, _ in results}
    print(f"  share of addresses found suppressed: {sorted(shares)} (expected about 0.1)")
    return 0 if all(0.07 <= s <= 0.13 for s in shares) else 1


if __name__ == "__main__":
    sys.exit(main())
