"""`stmails import listmonk` over a million subscribers: target under 5 minutes.

Loads listmonk's own schema.sql (v6.2.0, tests/data/listmonk/) into a PostgreSQL database,
fills it with generated data (1,000,000 subscribers, 1,500,000 subscriptions, campaigns,
bounces, users), then times the import into a fresh stmails database (SQLite by default, or
the PostgreSQL `--target-url`). Needs a PostgreSQL server for the source; the easiest is the
project's throw-away one:

    bash scripts/with-postgres.sh .venv/bin/python benchmarks/listmonk_import.py --source-url '$URL'
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from stmails.db.engine import make_engine, normalize_url
from stmails.db.migrate import upgrade
from stmails.services.listmonk_import import import_listmonk

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from listmonk_source import load_schema, populate

TARGET_SECONDS = 300


def _schema_url(server_url: str) -> str:
    """A new schema on the server, as a URL whose search_path is that schema."""
    name = f"listmonk_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    admin.dispose()
    url = normalize_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-url", default=os.environ.get("STMAILS_TEST_DATABASE_URL", ""))
    parser.add_argument("--target-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10,000 subscribers")
    args = parser.parse_args()
    if not args.source_url.startswith("postgresql"):
        print("listmonk_import: needs --source-url postgresql://... (see the docstring)")
        return 2
    count = 10_000 if args.quick else args.subscribers
    source = _schema_url(args.source_url)
    engine = make_engine(source)
    started = time.perf_counter()
    load_schema(engine, "v6.2.0")
    populate(engine, count)
    engine.dispose()
    print(f"source: {count:,} subscribers generated in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        target_url = args.target_url or f"sqlite:///{Path(tmp) / 'stmails.db'}"
        target = make_engine(target_url)
        upgrade(target)
        started, cpu = time.perf_counter(), time.process_time()
        report = import_listmonk(source, target)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        target.dispose()
    steps = report.steps
    print(f"target: {normalize_url(target_url).get_backend_name()}")
    for name, step in steps.items():
        print(f"  {name:<14} {step.seen:>10,} read {step.added:>10,} added")
    rate = count / elapsed if elapsed else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import: {elapsed:.1f} s for {count:,} subscribers ({rate:,.0f} subscribers/s; "
        f"{cpu:.1f} s of this process's CPU, the rest is PostgreSQL and waiting), "
        f"target < {TARGET_SECONDS} s for 1,000,000; peak RSS {peak:.0f} MiB; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
