"""The Verification section: check one address (its verdict and reasons), or upload a list as
a bulk job, watch its progress (htmx polls a fragment) and download the results.

Both go through the verification service the API uses (`app.state.verify`,
web.api.verify.VerifyService): the same verifier, deadline, job store, quotas and workers as
`POST /api/verify` and `/api/verify/jobs`; the downloads are the API's own routes.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from stmails.verify.export import read_address_csv
from stmails.verify.jobs import TooManyAddresses, TooManyJobs
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.api.verify import MAX_ADDRESS_CHARS, VerifyService
from stmails.web.deps import Viewer
from stmails.web.i18n import _

router = APIRouter()

PATH = "/admin/verification"


def service(request: Request) -> VerifyService:
    """The application's verification service."""
    found: VerifyService = request.app.state.verify
    return found


def _verdicts() -> dict[str, str]:
    return {
        "valid": _("valid"),
        "invalid": _("invalid"),
        "risky": _("risky"),
        "unknown": _("unknown"),
        "queued": _("queued"),
        "running": _("running"),
        "done": _("done"),
        "failed": _("failed"),
    }


def _page(
    request: Request,
    viewer: Viewer,
    *,
    email: str = "",
    result: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/verification.html",
        viewer=viewer,
        section="verification",
        title=_("Verification"),
        email=email,
        result=result,
        errors=errors or {},
        labels=_verdicts(),
        status_code=status_code,
    )


@router.get(PATH, include_in_schema=False)
async def verification_page(
    request: Request, viewer: Annotated[Viewer, page("verify:run")]
) -> Response:
    return _page(request, viewer)


@router.post(PATH, include_in_schema=False)
async def verify_one(request: Request, viewer: Annotated[Viewer, page("verify:run")]) -> Response:
    """Checks one address and shows its result on the page."""
    form = await form_fields(request)
    email = text(form, "email", MAX_ADDRESS_CHARS).strip()
    if not email:
        return _page(
            request, viewer, errors={"email": _("Enter an address to check.")}, status_code=400
        )
    offline = text(form, "offline", 5) == "1"
    result = await service(request).verify(email, offline=offline)
    return _page(request, viewer, email=email, result=result.to_dict())


def _addresses(payload: bytes, column: str) -> Iterator[str]:
    source = io.StringIO(payload.decode("utf-8-sig", "surrogateescape"), newline="")
    for address in read_address_csv(source, column or None):
        yield address[:MAX_ADDRESS_CHARS]


@router.post(f"{PATH}/jobs", include_in_schema=False)
async def start_job(request: Request, viewer: Annotated[Viewer, page("verify:run")]) -> Response:
    """Starts a bulk job over the addresses of an uploaded CSV (or plain list)."""
    form = await form_fields(request)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _page(
                request, viewer, errors={"file": _("Choose a file to upload.")}, status_code=400
            )
        payload = await upload.read()
        column = text(form, "column", 200).strip()
        offline = text(form, "offline", 5) == "1"
        verify = service(request)
        try:
            job = await asyncio.to_thread(
                verify.store.create, _addresses(payload, column), offline=offline
            )
        except (TooManyAddresses, TooManyJobs, ValueError, csv.Error) as exc:
            return _page(request, viewer, errors={"file": str(exc)}, status_code=400)
        verify.runner.submit(job)
    finally:
        await form.close()
    message = _("Verification of %(count)d addresses started.") % {"count": job.total}
    return redirect(request, f"{PATH}/jobs/{job.id}", flash=("success", message))


def _job(request: Request, job_id: str) -> dict[str, Any] | None:
    store = service(request).store
    if not store.valid_id(job_id):
        return None
    job = store.get(job_id)
    return None if job is None else job.to_dict()


@router.get(PATH + "/jobs/{job_id}", include_in_schema=False)
async def job_page(
    request: Request, viewer: Annotated[Viewer, page("verify:run")], job_id: str
) -> Response:
    job = await asyncio.to_thread(_job, request, job_id)
    if job is None:
        return render_page(
            request,
            "error.html",
            viewer=viewer,
            title="404",
            status_code=404,
            message=_("This verification job does not exist (finished jobs are kept a week)."),
        )
    return render_page(
        request,
        "admin/verification_job.html",
        viewer=viewer,
        section="verification",
        title=_("Verification job"),
        job=job,
        labels=_verdicts(),
    )


@router.get(PATH + "/jobs/{job_id}/status", include_in_schema=False)
async def job_status(
    request: Request, viewer: Annotated[Viewer, page("verify:run")], job_id: str
) -> Response:
    """The job's progress panel alone (htmx swaps it in every second until the job ends)."""
    job = await asyncio.to_thread(_job, request, job_id)
    if job is None:
        return Response(status_code=404)
    return render_page(
        request, "admin/verification_status.html", viewer=viewer, job=job, labels=_verdicts()
    )
