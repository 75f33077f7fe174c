"""Turns on prometheus-client's multiprocess mode (see `stmails.metrics`) for this process and
the processes it starts. Standard library only: it must run before prometheus-client is
imported, which reads its directory once, when imported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The environment variable prometheus-client's multiprocess mode reads when it is imported.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_directory(directory: Path, *, wipe: bool) -> None:
    """Makes every metric of this process (and of the processes it starts) live in files in
    `directory`, summed by `/metrics`.

    RuntimeError when prometheus-client was imported before with another directory (the
    metrics would silently stay per-process). `wipe` deletes the files of earlier runs, as
    prometheus-client asks at start; only the process that starts a host's servers wipes.
    """
    directory = directory.resolve()
    if "prometheus_client" in sys.modules and os.environ.get(MULTIPROC_ENV) != str(directory):
        raise RuntimeError("the metrics directory must be set before the metrics are imported")
    directory.mkdir(parents=True, exist_ok=True)
    if wipe:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
