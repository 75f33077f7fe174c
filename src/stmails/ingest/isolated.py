"""Classification of untrusted mail in worker processes, each message within a time budget.

A message from a bounce mailbox (or a file given to `stmails parse`) is whatever its sender
made it; a pattern of the classifier that backtracks on it, or a parser that grows without
bound, must not freeze the process that reads it. `IsolatedClassifier` runs
`stmails.core.classify` in a small pool of worker processes (Pebble's `ProcessPool`): the
calling process only waits, so the API's event loop and its threads keep the interpreter
lock, and a message that takes longer than its budget has its worker killed (and replaced)
and is reported as `ClassificationTimeout`. A worker that dies (a memory limit, a crash) is
reported as `ClassifierCrashed`; neither stops the other messages. Messages travel in small
groups (the hand-over costs more than classifying one); a group that overruns is classified
again one message at a time, so a hostile message costs at most twice its budget.

Workers are fresh interpreters (multiprocessing's "spawn": nothing of the multi-threaded
server is forked), limit their own address space, and are killed by the kernel when the
process that started them dies, so that no orphan keeps burning a core on a hostile message
after a server crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait
from types import TracebackType

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from stmails.core import BounceRecord, classify

Classifier = Callable[[bytes], list[BounceRecord]]
# What classifying one message gave: its records, or why it gave none.
Outcome = list[BounceRecord] | Exception

# Seconds one message may take; the slowest sample of the corpus takes well under one.
DEFAULT_BUDGET = 10.0
# Messages go to the workers in small groups: handing over one message per task would cost
# more than classifying it. A group that overruns the budget, or whose worker dies, is
# classified again one message at a time, so that each message gets its own outcome.
GROUP_MESSAGES = 20
GROUP_BYTES = 1024 * 1024
# Address space of one worker: ten times the largest message a mailbox reads by default,
# plus the interpreter.
MEMORY_LIMIT = 1024 * 1024 * 1024
# How often a caller waiting for a message looks whether the classifier was closed.
_POLL_SECONDS = 0.25
# prctl(2): deliver a signal to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


class ClassificationFailed(Exception):
    """Classifying one message did not finish; the message, not the caller, is at fault."""


class ClassificationTimeout(ClassificationFailed):
    """The message took longer than its budget; its worker was killed."""


class ClassifierCrashed(ClassificationFailed):
    """The worker classifying the message died (memory limit, crash)."""


class ClassifierClosed(RuntimeError):
    """The classifier was closed (the process is stopping): no message is at fault."""


def _classify_group(classifier: Classifier, raws: list[bytes]) -> list[Outcome]:
    """Runs in a worker: the records of each message, or the exception it raised."""
    outcomes: list[Outcome] = []
    for raw in raws:
        try:
            outcomes.append(classifier(raw))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _groups(raws: Sequence[bytes]) -> list[list[int]]:
    """The indexes of `raws` in groups of at most `GROUP_MESSAGES` messages and (but for a
    bigger message alone) `GROUP_BYTES` bytes."""
    groups: list[list[int]] = []
    size = 0
    for index, raw in enumerate(raws):
        if not groups or len(groups[-1]) >= GROUP_MESSAGES or size + len(raw) > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += len(raw)
    return groups


def default_workers() -> int:
    """Two workers where two cores exist: one hostile message then leaves the other working."""
    return max(1, min(2, os.cpu_count() or 1))


def _die_with_parent() -> None:
    # Linux only; elsewhere a worker outlives a crashed server until its message ends.
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_worker(memory_limit: int) -> None:
    """Runs first in every worker process."""
    _die_with_parent()
    # A worker stuck in the regex engine never gets to run a Python signal handler: with the
    # default action, the pool's SIGTERM ends it at once instead of after a grace period.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if memory_limit > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))


class IsolatedClassifier:
    """Classifies messages in worker processes, each within a time budget.

    `classify_many(raws, budget)` returns one outcome per message, in order: its records, or
    the exception that stopped it (`ClassificationTimeout`, `ClassifierCrashed`, or what the
    classifier raised). `classifier` must be importable by name (it runs in the workers).
    The pool starts on first use and is reused until `close()`; use it as a context manager.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        classifier: Classifier = classify,
        memory_limit: int = MEMORY_LIMIT,
    ) -> None:
        self._workers = workers or default_workers()
        self._classifier = classifier
        self._memory_limit = memory_limit
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> IsolatedClassifier:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _pool_now(self) -> ProcessPool:
        with self._lock:
            if self._closed:
                raise ClassifierClosed("the classifier is closed")
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(
                    max_workers=self._workers,
                    initializer=_start_worker,
                    initargs=(self._memory_limit,),
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def classify_many(self, raws: Sequence[bytes], budget: float = DEFAULT_BUDGET) -> list[Outcome]:
        """One outcome per message of `raws`, in order; each message gets `budget` seconds of
        its worker's time (waiting for a free worker does not count). Raises
        `ClassifierClosed` when `close()` was called, before or meanwhile."""
        if not raws:
            return []
        pool = self._pool_now()
        scheduled = [
            (group, self._schedule(pool, [raws[i] for i in group], budget))
            for group in _groups(raws)
        ]
        outcomes: list[Outcome | None] = [None] * len(raws)
        again: list[int] = []
        for group, future in scheduled:
            result = self._wait(future, budget, [f for _, f in scheduled])
            if isinstance(result, list):
                for index, outcome in zip(group, result, strict=True):
                    outcomes[index] = outcome
            elif len(group) == 1:
                outcomes[group[0]] = result
            else:
                # Which message overran (or killed the worker) is unknown: each alone.
                again.extend(group)
        singles = [(index, self._schedule(pool, [raws[index]], budget)) for index in again]
        for index, future in singles:
            result = self._wait(future, budget, [f for _, f in singles])
            outcomes[index] = result[0] if isinstance(result, list) else result
        if self._closed:
            # Workers killed by close() failed their messages through no fault of theirs.
            raise ClassifierClosed("the classifier was closed while classifying")
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(raws)
        return done

    def _schedule(
        self, pool: ProcessPool, raws: list[bytes], budget: float
    ) -> ProcessFuture[list[Outcome]]:
        """`raws` handed to the pool as one task; `ClassifierClosed` when `close()` stopped the
        pool after it was taken (pebble then refuses new tasks)."""
        try:
            future: ProcessFuture[list[Outcome]] = pool.schedule(
                _classify_group, args=(self._classifier, raws), timeout=budget
            )
        except RuntimeError:
            if self._closed:
                raise ClassifierClosed("the classifier was closed while classifying") from None
            raise
        return future

    def _wait(
        self,
        future: ProcessFuture[list[Outcome]],
        budget: float,
        others: list[ProcessFuture[list[Outcome]]],
    ) -> list[Outcome] | Exception:
        """The outcomes of one task, or why it gave none; `ClassifierClosed` (cancelling the
        `others`) when the classifier is closed meanwhile."""
        # A pool stopped by close() may leave a queued task's future unresolved: wait in
        # short steps, looking whether the classifier was closed meanwhile.
        while not future.done():
            if self._closed:
                for pending in others:
                    pending.cancel()  # type: ignore[no-untyped-call]
                raise ClassifierClosed("the classifier was closed while classifying")
            wait([future], timeout=_POLL_SECONDS)
        try:
            return future.result()
        except FutureTimeout:
            return ClassificationTimeout(f"classification took longer than {budget:g} s")
        except ProcessExpired as exc:
            return ClassifierCrashed(f"the classifier process died (exit code {exc.exitcode})")
        except Exception as exc:
            return exc

    def __call__(self, raw: bytes, budget: float = DEFAULT_BUDGET) -> list[BounceRecord]:
        """The records of one message; raises what `classify_many` would report."""
        outcome = self.classify_many([raw], budget)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stops the workers (one busy with a message is killed) and waits for them; the
        classifier cannot be used afterwards."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()
