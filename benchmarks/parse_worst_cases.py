"""Time `stmails.core.classify` on each adversarial message of the issue (built in memory).

Prints, per worst case, the input size, the number of records and the best of three timings;
the target is well under one second each. A baseline (stdlib `email` parsing the same bytes)
is printed with `--baseline` (it can take tens of seconds).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import sys
import time
from pathlib import Path

from stmails.core import classify

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "core"))
from worst_cases import WORST_CASES


def best_time(function: object, data: bytes, runs: int) -> float:
    """The fastest of `runs` calls of function(data), in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        function(data)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def stdlib_walk(raw: bytes) -> int:
    """The baseline: parse with the stdlib email package and visit every part."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return sum(1 for _ in message.walk())


def main() -> int:
    """Print one line per worst case; exit 1 if any takes a second or more."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", action="store_true", help="also time the stdlib parser")
    args = parser.parse_args()
    print("classify() on the issue's worst cases, best of 3 runs, one process")
    slow = False
    for name, build in WORST_CASES.items():
        data = build()
        elapsed = best_time(classify, data, 3)
        records = len(classify(data))
        slow = slow or elapsed >= 1.0
        line = (
            f"{name:<38} {len(data) / 1e6:7.2f} MB  {records:4d} records  {elapsed * 1000:8.1f} ms"
        )
        if args.baseline:
            start = time.perf_counter()
            try:
                stdlib_walk(data)
                outcome = ""
            except Exception as error:
                outcome = f", raised {type(error).__name__}"
            stdlib = time.perf_counter() - start
            line += (
                f"  (stdlib email: {stdlib * 1000:.0f} ms{outcome}, ratio {stdlib / elapsed:.0f}x)"
            )
        print(line)
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
