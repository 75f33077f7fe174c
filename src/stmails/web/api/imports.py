"""listmonk's subscriber import API: `/api/import/subscribers` (CSV upload, status, logs, stop).

One import runs at a time per server process, on a background thread; its progress and log
are kept in memory and read with `GET /api/import/subscribers[/logs]`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile

from stmails.services import imports
from stmails.services.errors import InvalidInput
from stmails.services.imports import ImportParams, ImportStatus
from stmails.web.body import run_db
from stmails.web.deps import AppState, app_state, require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

log = logging.getLogger("stmails.web")

router = APIRouter(tags=["import"], dependencies=[Depends(require_user)])

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["params", "file"],
                    "properties": {
                        "params": {
                            "type": "string",
                            "description": 'JSON: {"mode": "subscribe"|"blocklist", "delim": ",",'
                            ' "lists": [1], "overwrite": true, "subscription_status": "confirmed"}',
                        },
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


@dataclass(slots=True)
class ImportTracker:
    """The current (or last) import of this process."""

    status: ImportStatus = field(default_factory=ImportStatus)
    thread: threading.Thread | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def tracker(state: AppState) -> ImportTracker:
    found = state.extras.get("import")
    if not isinstance(found, ImportTracker):
        found = ImportTracker()
        state.extras["import"] = found
    return found


def _stats(status: ImportStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "total": status.total,
        "imported": status.imported,
        "status": status.status,
    }


@router.get(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Status of the current or last import",
)
async def import_status(request: Request) -> JSONResponse:
    return data(_stats(tracker(app_state(request)).status))


@router.get(
    "/import/subscribers/logs",
    dependencies=[require_permission("subscribers:import")],
    summary="Log of the current or last import",
)
async def import_logs(request: Request) -> JSONResponse:
    return data("\n".join(tracker(app_state(request)).status.log) + "\n")


@router.delete(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Stop the running import and clear its status",
)
async def stop_import(request: Request) -> JSONResponse:
    current = tracker(app_state(request))
    if current.running():
        current.cancelled.set()
        return data(_stats(current.status))
    current.status = ImportStatus()
    return data(_stats(current.status))


@router.post(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Import subscribers from CSV",
    openapi_extra=UPLOAD_SCHEMA,
)
async def start_import(request: Request) -> JSONResponse:
    """listmonk's CSV import: multipart `params` (JSON) and `file`; runs in the background."""
    async with request.form(max_files=1, max_fields=10) as form:
        params_text = form.get("params")
        upload = form.get("file")
        if not isinstance(params_text, str):
            raise bad_request("params: required (a JSON string)")
        if not isinstance(upload, UploadFile):
            raise bad_request("file: required (a CSV file)")
        params = imports.parse_params(params_text)
        await run_db(request, lambda s: imports.check_lists(s, params))
        state = app_state(request)
        current = tracker(state)
        with current.lock:
            if current.running():
                raise ApiError(409, "an import is already running")
            # Copy the upload: the request's own temporary file goes away with the request.
            spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the import thread)
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, spool)
            spool.seek(0)
            current.status = ImportStatus(name=upload.filename or "import.csv", status="importing")
            current.cancelled = threading.Event()
            current.status.note(f"processing '{current.status.name}'")
            current.thread = threading.Thread(
                target=_run,
                args=(state, current, spool, params),
                name="stmails-import",
                daemon=True,
            )
            current.thread.start()
    return data(_stats(current.status))


def _run(state: AppState, current: ImportTracker, spool: Any, params: ImportParams) -> None:
    status = current.status
    try:
        with imports.text_stream(spool) as text:
            rows = imports.read_rows(text, params.delimiter, status)
            imports.run_import(state.sessions, rows, params, status, current.cancelled)
        if status.status == "importing":
            status.status = "finished"
            status.note(f"imported {status.imported} of {status.total} rows")
    except InvalidInput as exc:
        status.status = "failed"
        status.note(str(exc))
    except Exception:
        status.status = "failed"
        status.note("import failed: internal error (see the server log)")
        log.exception("import failed")
