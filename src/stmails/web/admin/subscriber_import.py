"""The subscriber import page: a CSV (or ZIP) upload with listmonk's options (mode, lists,
subscription status, overwrite, delimiter), the progress of the running import (htmx polls
`/admin/subscribers/import/status`, a fragment), its log, and a stop button.

The upload starts the same background import as `POST /api/import/subscribers`
(web.api.imports.launch); the status and log are the database slot every process shares.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import SUBSCRIPTION_STATUSES, MailingList
from stmails.services import import_jobs, imports
from stmails.services import lists as list_service
from stmails.services.errors import InvalidInput
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.admin.subscribers import check_targets, statuses
from stmails.web.api.imports import launch
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.errors import ApiError
from stmails.web.i18n import _

router = APIRouter()

PATH = "/admin/subscribers/import"


def _labels() -> dict[str, str]:
    return {
        "none": _("No import yet."),
        "importing": _("Importing"),
        "stopping": _("Stopping"),
        "finished": _("Finished"),
        "stopped": _("Stopped"),
        "failed": _("Failed"),
    }


def _page(
    request: Request,
    viewer: Viewer,
    lists: list[MailingList],
    view: import_jobs.ImportView,
    *,
    values: dict[str, object] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/import.html",
        viewer=viewer,
        section="subscribers",
        title=_("Import subscribers"),
        lists=lists,
        job=view,
        labels=_labels(),
        values=values or {"mode": "subscribe", "status": "unconfirmed", "delim": ",", "lists": []},
        error=error,
        subscription_statuses=SUBSCRIPTION_STATUSES,
        statuses=statuses(),
        status_code=status_code,
    )


def _state(session: Session) -> tuple[list[MailingList], import_jobs.ImportView]:
    lists = list_service.by_name(session)
    return lists, import_jobs.current(session)


@router.get(PATH, include_in_schema=False)
async def import_page(
    request: Request, viewer: Annotated[Viewer, page("subscribers:import")]
) -> Response:
    lists, view = await run_db(request, _state)
    return _page(request, viewer, lists, view)


@router.get(f"{PATH}/status", include_in_schema=False)
async def import_status(
    request: Request, viewer: Annotated[Viewer, page("subscribers:import")]
) -> Response:
    """The status panel alone (htmx swaps it in every second while an import runs)."""
    view = await run_db(request, import_jobs.current)
    return render_page(
        request, "admin/import_status.html", viewer=viewer, job=view, labels=_labels()
    )


@router.post(PATH, include_in_schema=False)
async def start_import(
    request: Request, viewer: Annotated[Viewer, page("subscribers:import")]
) -> Response:
    form = await form_fields(request)
    try:
        return await _start(request, viewer, form)
    finally:
        # The upload's spooled file (the import copied what it needs).
        await form.close()


async def _start(request: Request, viewer: Viewer, form: FormData) -> Response:
    upload = form.get("file")
    list_ids = sorted({int(v) for v in form.getlist("lists") if isinstance(v, str) and v.isdigit()})
    values: dict[str, object] = {
        "mode": text(form, "mode", 20),
        "status": text(form, "subscription_status", 20),
        "delim": text(form, "delim", 5) or ",",
        "overwrite": text(form, "overwrite", 5) == "1",
        "lists": list_ids,
    }
    check_targets(viewer, list_ids)
    error = ""
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = _("Choose a CSV file to import.")
    else:
        try:
            params = imports.parse_params(
                json.dumps(
                    {
                        "mode": values["mode"],
                        "delim": values["delim"],
                        "lists": list_ids,
                        "overwrite": values["overwrite"],
                        "subscription_status": values["status"],
                    }
                )
            )
            await launch(request, params, upload)
        except InvalidInput as exc:
            error = str(exc)
        except ApiError as exc:
            error = _("An import is already running.") if exc.status == 409 else exc.message
        else:
            return redirect(request, PATH, flash=("success", _("The import has started.")))
    lists, view = await run_db(request, _state)
    return _page(request, viewer, lists, view, values=values, error=error, status_code=400)


@router.post(f"{PATH}/stop", include_in_schema=False)
async def stop_import(
    request: Request, viewer: Annotated[Viewer, page("subscribers:import")]
) -> Response:
    """Stops the running import (at its next chunk), or clears the last one's status."""
    view = await run_db(request, import_jobs.request_stop, write=True)
    message = _("Stopping the import.") if view.status == "stopping" else _("Cleared.")
    return redirect(request, PATH, flash=("success", message))
