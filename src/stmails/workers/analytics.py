"""The analytics folder: adds the figures' pending deltas to the rollups every few seconds.

Queries are exact without it (they read the pending deltas too); folding keeps them fast. Every
server process runs one; on PostgreSQL an advisory lock lets one of them fold at a time, on
SQLite the write lock does (see services.analytics.rollups.fold_pending).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stmails.services.analytics.rollups import fold_pending

log = logging.getLogger(__name__)

FOLD_SECONDS = 2.0


class AnalyticsFolder:
    """A daemon thread that folds the analytics deltas every `interval` seconds."""

    def __init__(self, sessions: sessionmaker[Session], interval: float = FOLD_SECONDS) -> None:
        self._sessions = sessions
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stmails-analytics", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def is_alive(self) -> bool:
        """True while the folding thread runs (from `start()` until `stop()`)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                fold_pending(self._sessions)
            except DBAPIError as exc:
                # A busy or unavailable database: the deltas wait for the next round (queries
                # count them meanwhile).
                log.warning("folding the analytics figures failed, retried later: %s", exc)
            except Exception:
                log.exception("folding the analytics figures failed")
