"""The verification API: one address in real time, and bulk jobs with progress and downloads.

``POST /api/verify``                       one address; ``{"data": <result>}``
``POST /api/verify/jobs``                  a JSON list (or ``{"emails": [...]}``), a CSV body or a
                                           multipart ``file`` upload; 202 ``{"data": <job>}``
``GET  /api/verify/jobs/{id}``             the job's status and progress
``GET  /api/verify/jobs/{id}/results``     ``?format=csv|json`` once the job is done

The router is self-contained: job state lives in files under the data directory it is given
(see :mod:`stmails.verify.jobs`), so it survives restarts. Its lifespan starts the job workers
(resuming unfinished jobs) and stops them at shutdown; an application that includes the router
runs that lifespan with its own. Authentication is the mounting application's: include the
router with its auth dependency.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.resolver
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.verify import MailDomainResolver, OfflineVerifier, Policy, Verifier
from stmails.verify.export import CSV_FIELDS, read_address_csv, record_row
from stmails.verify.jobs import DONE, Job, JobRunner, JobStore, TooManyAddresses, TooManyJobs
from stmails.verify.result import VerificationResult

__all__ = ["VerifyRequest", "VerifyService", "create_verify_router", "create_verify_service"]

MAX_ADDRESS_CHARS = 1024
# Bytes of a JSON list of addresses (parsed whole); larger lists go as CSV or text.
MAX_JSON_UPLOAD_BYTES = 8 * 1024 * 1024

log = logging.getLogger("stmails.web")


class VerifyRequest(BaseModel):
    """Body of ``POST /api/verify``."""

    email: str = Field(max_length=MAX_ADDRESS_CHARS, description="The address to verify.")
    offline: bool = Field(False, description="Only the stages that need no network.")
    timeout: float | None = Field(
        None, gt=0, description="Seconds for the network stages (capped by the server)."
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def default_verifier_factory(offline: bool) -> Verifier:
    """The offline stages, plus DNS through the system resolver unless ``offline``.

    A host without a resolver configuration gets the offline stages only (logged once per
    verifier), rather than failing every request.
    """
    if offline:
        return Verifier(OfflineVerifier(Policy.MAILING))
    try:
        resolver = dns.asyncresolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        log.warning("no DNS resolver configuration; verification runs the offline stages only")
        return Verifier(OfflineVerifier(Policy.MAILING))
    return Verifier(OfflineVerifier(Policy.MAILING), dns=MailDomainResolver(resolver))


class VerifyService:
    """The verification the API and the admin pages share: the job store and workers, and a
    verifier per event loop for single addresses (each within ``deadline`` seconds)."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        verifier_factory: Callable[[bool], Verifier],
        deadline: float,
    ) -> None:
        self.store = store
        self.runner = runner
        self.deadline = deadline
        self._factory = verifier_factory
        self._verifiers: dict[tuple[int, bool], Verifier] = {}

    def verifier(self, offline: bool) -> Verifier:
        """The verifier of the running event loop (the network stages' caches belong to it)."""
        key = (id(asyncio.get_running_loop()), offline)
        if key not in self._verifiers:
            self._verifiers[key] = self._factory(offline)
        return self._verifiers[key]

    async def verify(
        self, email: str, *, offline: bool = False, timeout: float | None = None
    ) -> VerificationResult:
        """The result of verifying one address, within the deadline."""
        budget = min(timeout or self.deadline, self.deadline)
        return await self.verifier(offline).verify(email, deadline=budget)

    async def submit(self, addresses: Iterable[str], *, offline: bool = False) -> Job:
        """A new job over `addresses`, queued for the workers (TooManyAddresses, TooManyJobs,
        ValueError as `JobStore.create`)."""
        job = await asyncio.to_thread(self.store.create, addresses, offline=offline)
        self.runner.submit(job)
        return job


def create_verify_service(
    data_dir: Path,
    *,
    verifier_factory: Callable[[bool], Verifier] = default_verifier_factory,
    deadline: float = 3.0,
    max_job_addresses: int = 1_000_000,
    job_workers: int = 1,
    max_open_jobs: int = 10,
    retention_seconds: float = 7 * 86400,
) -> VerifyService:
    """The shared verification service; jobs are stored under ``data_dir``."""
    store = JobStore(
        data_dir,
        max_addresses=max_job_addresses,
        max_open=max_open_jobs,
        retention_seconds=retention_seconds,
    )
    runner = JobRunner(store, verifier_factory, workers=job_workers)
    return VerifyService(store, runner, verifier_factory, deadline)


def create_verify_router(
    data_dir: Path,
    *,
    verifier_factory: Callable[[bool], Verifier] = default_verifier_factory,
    deadline: float = 3.0,
    max_upload_bytes: int = 50 * 1024 * 1024,
    max_job_addresses: int = 1_000_000,
    job_workers: int = 1,
    max_open_jobs: int = 10,
    retention_seconds: float = 7 * 86400,
    service: VerifyService | None = None,
) -> APIRouter:
    """Builds the router; jobs are stored under ``data_dir`` and resumed when it is built.

    ``verifier_factory(offline)`` builds verifiers (one for requests, one per job worker);
    ``deadline`` caps the seconds a single verification may spend on network stages. Building
    the router starts nothing: the job workers run from its lifespan's start (or the first
    job submitted) until its end. A job holds at most ``max_job_addresses`` addresses, at most
    ``max_open_jobs`` are queued or running at once, and finished ones are deleted after
    ``retention_seconds`` (verify.jobs.JobStore). ``service`` (built by
    ``create_verify_service``) replaces those settings when the caller shares it.
    """
    if service is None:
        service = create_verify_service(
            data_dir,
            verifier_factory=verifier_factory,
            deadline=deadline,
            max_job_addresses=max_job_addresses,
            job_workers=job_workers,
            max_open_jobs=max_open_jobs,
            retention_seconds=retention_seconds,
        )
    store = service.store
    runner = service.runner

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            # Joining the workers blocks: keep the event loop free while they finish a chunk.
            await asyncio.to_thread(runner.stop)

    router = APIRouter(prefix="/api/verify", tags=["verify"], lifespan=lifespan)

    @router.post("", summary="Verify one address")
    async def verify_one(body: VerifyRequest) -> JSONResponse:
        result = await service.verify(body.email, offline=body.offline, timeout=body.timeout)
        return JSONResponse({"data": result.to_dict()})

    @router.post("/jobs", summary="Start a bulk verification job", status_code=202)
    async def create_job(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        offline = request.query_params.get("offline", "").lower() in ("1", "true", "yes")
        addresses: Iterable[str]
        try:
            if content_type == "multipart/form-data":
                # The form parser spools files to disk; the declared length bounds the upload.
                declared = request.headers.get("content-length", "")
                if not declared.isdigit():
                    return _error(411, "a multipart upload needs a Content-Length")
                if int(declared) > max_upload_bytes:
                    return _error(413, f"the body is larger than {max_upload_bytes} bytes")
                # The context closes the spooled upload files when we are done with them.
                async with request.form(max_files=1, max_fields=10) as form:
                    upload = form.get("file")
                    if upload is None or isinstance(upload, str):
                        return _error(400, "send the list as a multipart field named 'file'")
                    addresses = _csv_addresses(await upload.read(), form.get("column"))
                    offline = offline or str(form.get("offline", "")).lower() in ("1", "true")
            elif content_type in ("application/json", ""):
                # A JSON list is parsed whole: its cap is lower than a CSV upload's.
                limit = min(max_upload_bytes, MAX_JSON_UPLOAD_BYTES)
                payload = await _read_capped(request, limit)
                addresses, offline = _json_addresses(payload, offline)
            elif content_type in ("text/csv", "text/plain"):
                payload = await _read_capped(request, max_upload_bytes)
                addresses = _csv_addresses(payload, request.query_params.get("column"))
            else:
                return _error(415, f"unsupported content type {content_type!r}")
            # The addresses are read (CSV: parsed) while the job's input is written, and the
            # count is checked as they come; the file work runs off the event loop.
            job = await asyncio.to_thread(store.create, addresses, offline=offline)
        except _TooLarge as exc:
            return _error(413, str(exc))
        except TooManyAddresses as exc:
            return _error(413, str(exc))
        except TooManyJobs as exc:
            return _error(429, f"{exc}; retry when one has finished", {"Retry-After": "60"})
        except (ValueError, csv.Error) as exc:
            return _error(400, str(exc))
        runner.submit(job)
        return JSONResponse({"data": job.to_dict()}, status_code=202)

    @router.get("/jobs/{job_id}", summary="A job's status and progress")
    async def get_job(job_id: str) -> JSONResponse:
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        return JSONResponse({"data": job.to_dict()})

    @router.get("/jobs/{job_id}/results", summary="Download a finished job's results")
    async def get_results(job_id: str, format: str = "json") -> Response:
        job = store.get(job_id)
        if job is None:
            return _error(404, "no such job")
        if format not in ("csv", "json"):
            return _error(400, "format is csv or json")
        if job.status != DONE:
            return _error(409, f"the job is {job.status}", headers={"Retry-After": "5"})
        if format == "csv":
            return StreamingResponse(
                _csv_stream(store, job_id),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="verify-{job_id}.csv"'},
            )
        return StreamingResponse(_json_stream(store, job_id), media_type="application/json")

    return router


class _TooLarge(Exception):
    """The request body is over the configured cap."""


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (``_TooLarge``) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_addresses(payload: bytes, offline: bool) -> tuple[list[str], bool]:
    try:
        data: Any = orjson.loads(payload or b"null")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if too_deep(data):
        raise ValueError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(data, dict):
        offline = offline or bool(data.get("offline", False))
        data = data.get("emails")
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ValueError('send a JSON list of addresses or {"emails": [...]}')
    if any(len(item) > MAX_ADDRESS_CHARS for item in data):
        raise ValueError(f"an address is longer than {MAX_ADDRESS_CHARS} characters")
    return data, offline


def _csv_addresses(payload: bytes, column: object) -> Iterator[str]:
    """The addresses of a CSV upload, parsed as they are taken (never held as a list)."""
    text = payload.decode("utf-8-sig", "surrogateescape")
    name = column if isinstance(column, str) and column else None
    for address in read_address_csv(io.StringIO(text, newline=""), name):
        yield address[:MAX_ADDRESS_CHARS]


def _csv_stream(store: JobStore, job_id: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for record in store.results(job_id):
        writer.writerow(record_row(record))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_stream(store: JobStore, job_id: str) -> Iterator[str]:
    yield '{"data": ['
    for index, record in enumerate(store.results(job_id)):
        yield ("" if index == 0 else ", ") + json.dumps(record)
    yield "]}"
