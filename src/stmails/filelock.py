"""A non-blocking exclusive file lock shared by processes that use one data directory.

Standard library only, so every layer may use it (verification jobs, the mailbox scanner).
The lock is an ``flock`` on an open file: it dies with its process, so a crash never leaves a
stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Yields True while this process holds the lock on `path` (released on exit), False when
    another process holds it. The file is created when missing; its parent must exist."""
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
