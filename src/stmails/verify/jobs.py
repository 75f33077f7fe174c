"""Bulk verification jobs persisted as files, run by background worker threads.

A job is a directory ``<data_dir>/<id>/`` holding ``input.jsonl`` (one JSON string per address,
so any address survives, newlines included), ``results.jsonl`` (one full result record per
line, appended in input order) and ``job.json`` (status and counters, replaced atomically).
Because progress is the number of complete lines in ``results.jsonl``, a job interrupted by a
restart resumes where it stopped: :meth:`JobRunner.start` requeues every unfinished job.

Quotas: a job holds at most ``max_addresses`` addresses, counted while its input is written
(the input is never held as a list; past the limit the partial job is removed and
:class:`TooManyAddresses` raised), and at most ``max_open`` jobs are queued or running at once
(:class:`TooManyJobs`). Retention: finished jobs older than ``retention_seconds`` are deleted
when a job is created or the runner starts (:meth:`JobStore.prune`).

Workers are threads, each with its own event loop and its own :class:`Verifier` (its caches and
locks belong to that loop); ``workers`` bounds how many jobs run at once and the verifier's
``concurrency`` how many domains one job has in flight. :meth:`JobRunner.stop` ends them after
their current chunk; the job they were running stays resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from stmails.filelock import try_lock
from stmails.verify.pipeline import Verifier
from stmails.verify.result import VerificationResult

__all__ = ["Job", "JobRunner", "JobStatus", "JobStore", "TooManyAddresses", "TooManyJobs"]

JobStatus = str
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_ID_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Job:
    """A job's state as the API shows it (``counts`` maps verdicts to how many so far)."""

    id: str
    status: JobStatus
    total: int
    processed: int = 0
    offline: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, with ``progress`` as a fraction from 0 to 1."""
        data = asdict(self)
        data["progress"] = 1.0 if self.total == 0 else round(self.processed / self.total, 4)
        return data


class TooManyAddresses(ValueError):
    """A job's input has more addresses than a job may hold."""


class TooManyJobs(RuntimeError):
    """As many jobs as allowed are already queued or running."""


class JobStore:
    """Job files under ``data_dir`` (created with the first job, so building a store writes
    nothing), within the quotas and retention of the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_addresses: int = 1_000_000,
        max_open: int = 10,
        retention_seconds: float = 7 * 86400,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.max_addresses = max_addresses
        self.max_open = max_open
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        # One creation at a time, so that two requests cannot both take the last open slot.
        self._create_lock = threading.Lock()

    def _dir(self, job_id: str) -> Path:
        return self.data_dir / job_id

    @staticmethod
    def valid_id(job_id: str) -> bool:
        """Whether ``job_id`` has the shape of an id we issue (so it is safe in a path)."""
        return len(job_id) == 32 and set(job_id) <= _ID_CHARS

    def create(self, addresses: Iterable[str], *, offline: bool) -> Job:
        """Stores a new queued job; the input is written before the job becomes visible.

        `addresses` is consumed as it is written: past `max_addresses` the partial job is
        removed and TooManyAddresses raised; TooManyJobs when `max_open` jobs are queued or
        running. Finished jobs past their retention are deleted first."""
        with self._create_lock:
            self.prune()
            if len(self.unfinished()) >= self.max_open:
                raise TooManyJobs(
                    f"{self.max_open} verification jobs are already queued or running"
                )
            job_id = secrets.token_hex(16)
            directory = self._dir(job_id)
            directory.mkdir(parents=True)
            total = 0
            try:
                with (directory / "input.jsonl").open("w", encoding="utf-8") as out:
                    for address in addresses:
                        total += 1
                        if total > self.max_addresses:
                            raise TooManyAddresses(
                                f"a job holds at most {self.max_addresses} addresses"
                            )
                        out.write(json.dumps(address) + "\n")
                (directory / "results.jsonl").touch()
                now = time.time()
                job = Job(job_id, QUEUED, total, offline=offline, created_at=now, updated_at=now)
                self.save(job)
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            return job

    def prune(self, now: float | None = None) -> list[str]:
        """Deletes the finished (done or failed) jobs last updated more than
        `retention_seconds` ago; returns their ids."""
        if not self.data_dir.is_dir():
            return []
        cutoff = (time.time() if now is None else now) - self.retention_seconds
        removed = []
        for path in self.data_dir.iterdir():
            job = self.get(path.name) if path.is_dir() else None
            if job is not None and job.status in (DONE, FAILED) and job.updated_at < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(job.id)
        return removed

    def save(self, job: Job) -> None:
        """Replaces ``job.json`` atomically (write a temporary file, then rename)."""
        target = self._dir(job.id) / "job.json"
        temporary = target.with_suffix(".tmp")
        with self._lock:
            temporary.write_text(json.dumps(asdict(job)), encoding="utf-8")
            os.replace(temporary, target)

    def get(self, job_id: str) -> Job | None:
        """The job, or None when there is no such job (or the id is malformed)."""
        if not self.valid_id(job_id):
            return None
        try:
            data = json.loads((self._dir(job_id) / "job.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Job(**data)

    def unfinished(self) -> list[Job]:
        """Queued or running jobs, oldest first (what a restart must resume)."""
        if not self.data_dir.is_dir():
            return []
        jobs = [self.get(path.name) for path in self.data_dir.iterdir() if path.is_dir()]
        pending = [j for j in jobs if j is not None and j.status in (QUEUED, RUNNING)]
        return sorted(pending, key=lambda j: j.created_at)

    @contextlib.contextmanager
    def claim(self, job_id: str) -> Iterator[bool]:
        """Holds the job's lock file (an exclusive ``flock``) while the block runs; yields
        whether it was free. Server processes that share a data directory (several uvicorn
        workers) thus never run one job twice at once; the lock dies with its process."""
        with try_lock(self._dir(job_id) / "lock") as held:
            yield held

    def inputs(self, job_id: str, skip: int) -> Iterator[str]:
        """The job's addresses after the first ``skip``."""
        with (self._dir(job_id) / "input.jsonl").open(encoding="utf-8") as source:
            for line in islice(source, skip, None):
                yield json.loads(line)

    def results_path(self, job_id: str) -> Path:
        """Where the job's result records are (one JSON object per line)."""
        return self._dir(job_id) / "results.jsonl"

    def results(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The stored result records, in input order."""
        with self.results_path(job_id).open(encoding="utf-8") as source:
            for line in source:
                if line.endswith("\n"):
                    yield json.loads(line)

    def completed_results(self, job_id: str) -> tuple[int, Counter[str]]:
        """Counts complete result lines (and their verdicts), dropping a torn last line."""
        path = self.results_path(job_id)
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            # A crash mid-write left half a line: cut it so the job can append cleanly.
            with path.open("r+b") as out:
                out.truncate(len(complete))
        counts: Counter[str] = Counter()
        lines = complete.splitlines()
        for line in lines:
            counts[json.loads(line)["result"]] += 1
        return len(lines), counts


class JobRunner:
    """Runs queued jobs on ``workers`` background threads.

    ``verifier_factory(offline)`` builds the verifier a worker uses for jobs with or without
    the network stages; ``chunk`` addresses are verified and persisted at a time.
    """

    def __init__(
        self,
        store: JobStore,
        verifier_factory: Callable[[bool], Verifier],
        *,
        workers: int = 1,
        chunk: int = 500,
        concurrency: int = 16,
    ) -> None:
        self.store = store
        self._factory = verifier_factory
        self._workers = max(1, workers)
        self._chunk = chunk
        self._concurrency = concurrency
        self._queue: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Starts the workers (once) and requeues the jobs a restart interrupted."""
        if self._threads:
            return
        # Each start gets its own queue and stop signal, so workers of an earlier start that
        # outlived stop()'s wait can never take (or end) the new workers' jobs.
        self._queue = queue.Queue()
        self._stopping = threading.Event()
        self.store.prune()
        for job in self.store.unfinished():
            self._queue.put(job.id)
        for number in range(self._workers):
            thread = threading.Thread(
                target=self._work,
                args=(self._queue, self._stopping),
                name=f"stmails-verify-job-{number}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, job: Job) -> None:
        """Queues a stored job."""
        self.start()
        self._queue.put(job.id)

    def stop(self, timeout: float = 30.0) -> None:
        """Ends the workers after their current chunk and waits up to ``timeout`` seconds.

        A job they were running stays ``running`` on disk and queued jobs stay ``queued``, so
        the next :meth:`start` (here or in another process) resumes them.
        """
        threads, self._threads = self._threads, []
        self._stopping.set()
        for _ in threads:
            # Wakes a worker waiting for work; the id of no job.
            self._queue.put("")
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self, jobs: queue.Queue[str], stopping: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        verifiers: dict[bool, Verifier] = {}
        try:
            while True:
                job_id = jobs.get()
                if stopping.is_set():
                    return
                job = self.store.get(job_id)
                if job is None or job.status not in (QUEUED, RUNNING):
                    continue
                if job.offline not in verifiers:
                    verifiers[job.offline] = self._factory(job.offline)
                with self.store.claim(job_id) as claimed:
                    # Another server process sharing the data directory is running it (or
                    # finished it while we waited).
                    job = self.store.get(job_id) if claimed else None
                    if job is None or job.status not in (QUEUED, RUNNING):
                        continue
                    try:
                        loop.run_until_complete(self._run(job, verifiers[job.offline], stopping))
                    except Exception as exc:
                        # The job fails; the worker survives to run the next one.
                        failed = self.store.get(job_id) or job
                        self.store.save(replace(failed, status=FAILED, error=repr(exc)[:500]))
        finally:
            loop.close()

    async def _run(self, job: Job, verifier: Verifier, stopping: threading.Event) -> None:
        processed, counts = self.store.completed_results(job.id)
        job = replace(job, status=RUNNING, processed=processed, counts=dict(counts))
        self.store.save(job)
        inputs = self.store.inputs(job.id, processed)
        with self.store.results_path(job.id).open("a", encoding="utf-8") as out:
            while chunk := list(islice(inputs, self._chunk)):
                if stopping.is_set():
                    # Left running: the next start resumes after the last stored result.
                    return
                results = await self._verify(verifier, chunk, job.offline)
                out.write("".join(json.dumps(r.to_dict()) + "\n" for r in results))
                out.flush()
                counts.update(r.result.value for r in results)
                job = replace(
                    job,
                    processed=job.processed + len(results),
                    counts=dict(counts),
                    updated_at=time.time(),
                )
                self.store.save(job)
        self.store.save(replace(job, status=DONE, updated_at=time.time()))

    async def _verify(
        self, verifier: Verifier, chunk: list[str], offline: bool
    ) -> list[VerificationResult]:
        if offline or verifier.dns is None:
            return [verifier.offline.verify(address) for address in chunk]
        return await verifier.verify_many(chunk, concurrency=self._concurrency)
