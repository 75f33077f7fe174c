"""Accuracy and speed of `stmails.core.classify` over the Sisimai corpus (../shared/corpus/sisimai).

Prints the corpus README's scores (detection rate, recipient-count match, per-field accuracy for
status, replycode, reason and hard, false positives), line-ending invariance (CRLF and CR-only),
messages per second (best of N passes, each reading every file from disk) and peak RSS.
`--verbose` lists per-file mismatches; `--quick` runs one timing pass.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import platform
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from stmails.core import classify

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "sisimai"
FIELDS = ("status", "replycode", "reason", "hard")


def score(
    expected: dict[str, list[dict[str, object]]], got: dict[str, list[dict[str, object]]]
) -> dict[str, float]:
    """The README's figures: detection, count match, per-field multiset accuracy, FPs."""
    bounces = [name for name, recs in expected.items() if recs]
    empty = [name for name, recs in expected.items() if not recs]
    detected = sum(1 for name in bounces if got.get(name))
    count_ok = sum(1 for name in bounces if len(got.get(name, [])) == len(expected[name]))
    out: dict[str, float] = {
        "detection": detected / len(bounces),
        "count_match": count_ok / len(bounces),
        "false_positives": float(sum(1 for name in empty if got.get(name))),
    }
    for field in FIELDS:
        hit = 0
        total = 0
        for name in bounces:
            want = Counter(str(r.get(field, "")) for r in expected[name])
            have = Counter(str(r.get(field, "")) for r in got.get(name, []))
            hit += sum((want & have).values())
            total += max(len(expected[name]), len(got.get(name, [])))
        out[field] = hit / total if total else 1.0
    return out


def run_all(files: list[Path], transform: str = "") -> dict[str, list[dict[str, object]]]:
    """Classify every file (optionally with its line ends rewritten) into scored fields."""
    results: dict[str, list[dict[str, object]]] = {}
    for path in files:
        raw = path.read_bytes()
        if transform:
            lf = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            raw = lf.replace(b"\n", transform.encode())
        results[path.name] = [
            {"status": r.status, "replycode": r.replycode, "reason": r.reason, "hard": r.hard}
            for r in classify(raw)
        ]
    return results


def main() -> int:
    """Print the figures; exit 1 when the corpus is absent."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--verbose", action="store_true", help="list per-file mismatches")
    parser.add_argument("--quick", action="store_true", help="one timing pass")
    parser.add_argument("--passes", type=int, default=5, help="timing passes (best is kept)")
    args = parser.parse_args()
    expected_path = args.corpus / "expected.json"
    if not expected_path.is_file():
        print(f"corpus not found at {args.corpus}", file=sys.stderr)
        return 1
    expected = json.loads(expected_path.read_text())
    files = sorted((args.corpus / "eml").glob("*.eml"))
    got = run_all(files)
    figures = score(expected, got)
    print(f"corpus: {args.corpus} ({len(files)} files)")
    print(f"python {platform.python_version()} on {platform.machine()}, one process")
    print(f"detection rate:          {figures['detection']:.4f}")
    print(f"recipient-count match:   {figures['count_match']:.4f}")
    for field in FIELDS:
        print(f"{field + ' accuracy:':<25}{figures[field]:.4f}")
    print(f"false positives:         {int(figures['false_positives'])}")
    invariant = all(run_all(files, ending) == got for ending in ("\r\n", "\r"))
    print(f"line-ending invariance:  {'identical (CRLF, CR)' if invariant else 'DIFFERENT'}")
    passes = 1 if args.quick else max(1, args.passes)
    # Each pass times stmails and, right after it, a baseline over the same files: the stdlib
    # email parser alone (compat32, what flufl.bounce builds on), parsing only. Interleaving
    # makes the ratio meaningful on a machine whose load changes while it runs.
    best = best_cpu = base = base_cpu = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        start_cpu = time.process_time()
        for path in files:
            classify(path.read_bytes())
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        start = time.perf_counter()
        start_cpu = time.process_time()
        for path in files:
            email.message_from_bytes(path.read_bytes())
        base = min(base, time.perf_counter() - start)
        base_cpu = min(base_cpu, time.process_time() - start_cpu)
    print(
        f"speed:                   {len(files) / best:,.0f} messages/s wall clock, "
        f"{len(files) / best_cpu:,.0f} messages/s of process CPU time "
        f"(best of {passes} passes, files read from disk each pass; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print(
        f"baseline:                {len(files) / base:,.0f} messages/s wall clock, "
        f"{len(files) / base_cpu:,.0f} messages/s of CPU time for stdlib "
        f"email.message_from_bytes alone (parse only, same passes); stmails classifies "
        f"{base / best:.2f}x (wall) / {base_cpu / best_cpu:.2f}x (CPU) as fast"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS:                {peak / 1024:.1f} MiB")
    if args.verbose:
        for name in sorted(expected):
            want = sorted(json.dumps({k: r.get(k) for k in FIELDS}) for r in expected[name])
            have = sorted(json.dumps(r) for r in got.get(name, []))
            if want != have:
                print(f"\n{name}\n  want {want}\n  got  {have}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
