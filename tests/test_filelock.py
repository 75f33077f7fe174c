"""The shared non-blocking file lock: one holder at a time, free again after release."""

from __future__ import annotations

from pathlib import Path

from stmails.filelock import try_lock


def test_second_holder_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with try_lock(path) as first:
        assert first is True
        # A separate open file description conflicts even in the same process.
        with try_lock(path) as second:
            assert second is False
    with try_lock(path) as again:
        assert again is True
