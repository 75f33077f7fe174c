"""Group commit: one writer records the items of many concurrent requests in one transaction.

`BatchWriter` does it for any kind of item (`record(session, item)`, optionally
`record_many(session, items)`); `GroupCommitWriter` is the bounce webhooks' instance (items are
`Event`s), and the tracking routes use another one for opens and clicks (web.public.tracking).

Each request hands its item to `BatchWriter.submit()` and awaits its own future. A single
writer task takes everything queued, records the batch in one database transaction on a
dedicated thread, commits, and only then resolves the futures: no request is acknowledged before
its event is committed. If recording one event fails, the transaction is rolled back and the
batch is recorded again without it, so one bad event does not fail its neighbours; when the
database itself is unavailable the whole batch fails (each caller answers 503 and retries).

A transaction costs about as much as a dozen more events in it, so under load the writer waits
a moment (`linger_seconds`, 2 ms) for more events before it starts a batch: concurrent clients
answered by one commit come back while the next is being recorded, and without the wait they
would be split between two small batches. A lone event (no concurrency) never waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from stmails.core.event import Event
from stmails.db.handles import Session
from stmails.web.errors import is_database_unavailable, unavailable

log = logging.getLogger("stmails.web.group_commit")

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_QUEUE = 20_000
DEFAULT_WAIT_SECONDS = 30.0
DEFAULT_LINGER_SECONDS = 0.002


@dataclass(slots=True)
class _Pending(Generic[ItemT, ResultT]):
    event: ItemT
    future: asyncio.Future[ResultT]


def _expire(future: asyncio.Future[ResultT], what: str) -> None:
    if not future.done():
        future.set_exception(unavailable(f"recording the {what} took too long; retry later"))


class BatchWriter(Generic[ItemT, ResultT]):
    """Records items through `record(session, item)` in batches, one transaction per batch.

    `session_factory` opens a Session; `record` must not commit (the writer does). Results and
    exceptions are delivered to each submitter. `record_many`, when given, records a whole batch
    in one call (returning an outcome per item, exceptions for refused items); if it raises,
    the batch is rolled back and recorded again item by item with `record`. Start it in the
    event loop that serves the requests (`start()`), and `stop()` it on shutdown: queued items
    are still recorded. A batch of two or more items waits `linger_seconds` for more before it
    is recorded (see the module). `what` names an item in the 503 answers ("bounce").
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        record: Callable[[Session, ItemT], ResultT],
        record_many: Callable[[Session, list[ItemT]], Sequence[ResultT | Exception]] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
        what: str = "bounce",
    ) -> None:
        self._what = what
        self._session_factory = session_factory
        self._record = record
        self._record_many = record_many
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._wait_seconds = wait_seconds
        self._linger_seconds = linger_seconds
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT] | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0
        self.events = 0

    async def start(self) -> None:
        """Starts the writer task in the running loop."""
        self._queue = asyncio.Queue(self._max_queue)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stmails-writer")
        self._task = asyncio.create_task(self._run(), name="stmails-group-commit")

    async def stop(self) -> None:
        """Records what is queued, then ends the writer task and its thread."""
        if self._queue is not None and self._task is not None:
            await self._queue.put(None)
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = None
        self._queue = None
        self._executor = None

    def is_alive(self) -> bool:
        """True from `start()` until `stop()`, unless the writer task has ended on its own."""
        return self._task is not None and not self._task.done()

    def depth(self) -> int:
        """How many items wait to be written now (0 when the writer is not running)."""
        queue = self._queue
        return queue.qsize() if queue is not None else 0

    async def submit(self, event: ItemT) -> ResultT:
        """Records `event`; returns once its transaction committed (raises what recording raised).

        Raises ApiError 503 when the queue is full or the commit does not happen in time.
        """
        queue = self._queue
        if queue is None:
            raise unavailable(f"the {self._what} writer is not running; retry later")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        try:
            queue.put_nowait(_Pending(event, future))
        except asyncio.QueueFull:
            raise unavailable(
                f"too many {self._what}s waiting to be recorded; retry later"
            ) from None
        # A timer rather than asyncio.wait_for, which costs a task per request. If it fires, the
        # event may still commit later; the caller's retry is then a duplicate, recorded once.
        timer = loop.call_later(self._wait_seconds, _expire, future, self._what)
        try:
            return await future
        finally:
            timer.cancel()

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            stopping = self._take(queue, batch)
            if not stopping and 1 < len(batch) < self._max_batch and self._linger_seconds > 0:
                await asyncio.sleep(self._linger_seconds)
                stopping = self._take(queue, batch)
            events = [pending.event for pending in batch]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, events)
            except Exception as exc:  # the commit machinery itself failed
                log.exception("group commit failed")
                outcomes = [exc] * len(batch)
            self.batches += 1
            self.events += len(batch)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    def _take(
        self,
        queue: asyncio.Queue[_Pending[ItemT, ResultT] | None],
        batch: list[_Pending[ItemT, ResultT]],
    ) -> bool:
        """Moves what is queued into `batch` (up to the batch size); True when the stop
        marker was among it."""
        while len(batch) < self._max_batch and not queue.empty():
            item = queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
        return False

    def _commit(self, events: list[ItemT]) -> list[ResultT | BaseException]:
        """Runs on the writer thread: one transaction for `events`, retried without failures."""
        if self._record_many is not None and len(events) > 1:
            with self._session_factory() as session:
                try:
                    batch_outcomes = list(self._record_many(session, events))
                    session.commit()
                    return list(batch_outcomes)
                except Exception as exc:
                    session.rollback()
                    if is_database_unavailable(exc):
                        return [exc] * len(events)
                    log.warning("batch recording failed (%s); recording one by one", exc)
        return self._commit_each(events)

    def _commit_each(self, events: list[ItemT]) -> list[ResultT | BaseException]:
        """One transaction for `events` through `record`, retried without the failing ones."""
        outcomes: dict[int, ResultT | BaseException] = {}
        remaining = list(range(len(events)))
        while remaining:
            failed_at: int | None = None
            results: list[ResultT] = []
            with self._session_factory() as session:
                try:
                    for index in remaining:
                        failed_at = index
                        results.append(self._record(session, events[index]))
                    failed_at = None
                    session.commit()
                except Exception as exc:
                    session.rollback()
                    if is_database_unavailable(exc) or (failed_at is None and len(remaining) == 1):
                        # The database is down or busy: nothing in this batch was stored, and
                        # retrying now would fail the same way.
                        for index in remaining:
                            outcomes[index] = exc
                        break
                    if failed_at is None:
                        # The commit itself failed (e.g. a concurrent writer stored the same
                        # event first): record each event in its own transaction instead.
                        for index in remaining:
                            outcomes[index] = self._commit_each([events[index]])[0]
                        break
                    outcomes[failed_at] = exc
                    remaining.remove(failed_at)
                    continue
            for index, result in zip(remaining, results, strict=True):
                outcomes[index] = result
            break
        return [outcomes[index] for index in range(len(events))]


class GroupCommitWriter(BatchWriter[Event, ResultT]):
    """The bounce webhooks' writer: a `BatchWriter` of bounce `Event`s."""
