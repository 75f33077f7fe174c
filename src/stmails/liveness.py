"""The background loops this process runs outside any one application, and whether each one
still runs: `GET /health/ready` reports them beside the application's own loops.

`stmails serve` starts the campaign sender in a thread of its main process; with one server
process the application runs in that same process and reports the thread here. Standard
library only, so that any layer may register a loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_checks: dict[str, Callable[[], bool]] = {}


def register(name: str, check: Callable[[], bool]) -> Callable[[], None]:
    """Reports `check()` under `name` until the returned function is called (which removes
    this registration, not a later one under the same name)."""
    with _lock:
        _checks[name] = check

    def unregister() -> None:
        with _lock:
            if _checks.get(name) is check:
                del _checks[name]

    return unregister


def checks() -> dict[str, Callable[[], bool]]:
    """The registered checks by name (a copy)."""
    with _lock:
        return dict(_checks)
