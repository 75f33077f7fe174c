"""Issue 11: verification jobs have quotas (addresses per job, counted while the input is
read; jobs queued or running at once) and a retention (finished jobs are deleted)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stmails.verify.jobs import DONE, Job, JobStore, TooManyAddresses, TooManyJobs


def _counting(n: int, seen: list[int]) -> Iterator[str]:
    for i in range(n):
        seen.append(i)
        yield f"a{i}@example.org"


def test_the_address_limit_applies_while_the_input_is_read(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_addresses=100)
    seen: list[int] = []
    with pytest.raises(TooManyAddresses):
        store.create(_counting(10**9, seen), offline=True)
    # It stopped one address past the limit, and left no partial job behind.
    assert len(seen) == 101
    assert list(tmp_path.iterdir()) == []
    assert store.create(_counting(100, []), offline=True).total == 100


def test_open_jobs_are_limited_and_finished_ones_expire(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_open=2, retention_seconds=3600)
    first = store.create(["a@example.org"], offline=True)
    store.create(["b@example.org"], offline=True)
    with pytest.raises(TooManyJobs):
        store.create(["c@example.org"], offline=True)
    # A finished job frees its slot, and is deleted once older than the retention.
    long_ago = time.time() - 7200
    store.save(Job(first.id, DONE, 1, 1, True, {}, long_ago, long_ago))
    third = store.create(["c@example.org"], offline=True)
    assert store.get(first.id) is None
    assert store.get(third.id) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(j.id for j in store.unfinished())
