"""listmonk's subscriber import API: `/api/import/subscribers` (CSV upload, status, logs, stop).

The file is a CSV file, or (as listmonk takes) a ZIP archive whose first `.csv` file is
imported, decompressed as it is read (services.imports.zip_csv_member, csv_bytes).

One import runs at a time across every server process (the slot is a database row, see
`services.import_jobs`), on a background thread of the process that received the upload; its
progress and log are stored with each committed chunk, so `GET /api/import/subscribers[/logs]`
and `DELETE` work from whichever process answers them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from stmails.db.dialect import is_sqlite
from stmails.db.handles import Session
from stmails.services import import_jobs, imports
from stmails.services.errors import InvalidInput
from stmails.services.imports import ImportParams, ImportStatus
from stmails.services.listmonk_import import ListmonkImportError, import_listmonk
from stmails.services.listmonk_import.source import source_engine
from stmails.web.body import json_object, run_db
from stmails.web.deps import AppState, app_state, require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.list_scope import check_target_lists
from stmails.web.permissions import Caller, require_permission
from stmails.web.responses import JSONResponse, data

log = logging.getLogger("stmails.web")

# Between two chunks of an import on SQLite the write lock is left free this long, so that a
# writer waiting on the busy timeout (which polls every 100 ms at most) has a fair chance at it.
SQLITE_PAUSE = 0.05

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


def _stats(view: import_jobs.ImportView) -> dict[str, Any]:
    return {
        "name": view.name,
        "total": view.total,
        "imported": view.imported,
        "status": view.status,
    }


@router.get(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Status of the current or last import",
)
async def import_status(request: Request) -> JSONResponse:
    return data(_stats(await run_db(request, import_jobs.current)))


@router.get(
    "/import/subscribers/logs",
    dependencies=[require_permission("subscribers:import")],
    summary="Log of the current or last import",
)
async def import_logs(request: Request) -> JSONResponse:
    return data((await run_db(request, import_jobs.current)).log)


@router.delete(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Stop the running import, or clear the last one",
)
async def stop_import(request: Request) -> JSONResponse:
    return data(_stats(await run_db(request, import_jobs.request_stop, write=True)))


@router.post(
    "/import/subscribers",
    dependencies=[require_permission("subscribers:import")],
    summary="Import subscribers from CSV",
    openapi_extra=UPLOAD_SCHEMA,
)
async def start_import(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's CSV import: multipart `params` (JSON) and `file`; runs in the background."""
    async with request.form(max_files=1, max_fields=10) as form:
        params_text = form.get("params")
        upload = form.get("file")
        if not isinstance(params_text, str):
            raise bad_request("params: required (a JSON string)")
        if not isinstance(upload, UploadFile):
            raise bad_request("file: required (a CSV file)")
        params = imports.parse_params(params_text)
        check_target_lists(caller, params.lists)
        status = await launch(request, params, upload)
    return data(_stats(import_jobs.ImportView(status.name, 0, 0, "importing")))


async def launch(request: Request, params: ImportParams, upload: UploadFile) -> ImportStatus:
    """Starts the import of `upload` with `params` (lists already checked against the caller)
    on a background thread; InvalidInput for an unknown list or a bad archive, 409 while
    another import runs. The admin page's upload comes here too."""
    await run_db(request, lambda s: imports.check_lists(s, params))
    member = await run_in_threadpool(imports.zip_csv_member, upload.file)
    state = app_state(request)
    # The slot in the database decides (an import may run in another server process).
    owner = import_jobs.new_owner()
    status = ImportStatus(name=member or upload.filename or "import.csv", status="importing")
    status.note(f"processing '{status.name}'")
    if not await run_db(request, lambda s: import_jobs.claim(s, owner, status), write=True):
        raise ApiError(409, "an import is already running")
    # Copy the upload: the request's own temporary file goes away with the request.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the import thread)
    upload.file.seek(0)
    shutil.copyfileobj(upload.file, spool)
    spool.seek(0)
    threading.Thread(
        target=_run,
        args=(state, owner, status, spool, params, member),
        name="stmails-import",
        daemon=True,
    ).start()
    return status


def _run(
    state: AppState,
    owner: str,
    status: ImportStatus,
    spool: Any,
    params: ImportParams,
    member: str | None = None,
) -> None:
    def checkpoint(session: Session) -> bool:
        return import_jobs.save(session, owner, status)

    try:
        with imports.csv_bytes(spool, member) as raw, imports.text_stream(raw) as text:
            rows = imports.read_rows(text, params.delimiter, status)
            imports.run_import(
                state.sessions,
                rows,
                params,
                status,
                checkpoint=checkpoint,
                pause_seconds=SQLITE_PAUSE if is_sqlite(state.engine) else 0.0,
            )
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
    finally:
        spool.close()
    try:
        with state.sessions() as session:
            import_jobs.save(session, owner, status)
            session.commit()
    except Exception:
        # The slot then reads as failed once its owner has been silent for STALE_AFTER.
        log.exception("could not store the import's final status")


# --- Importing a listmonk database (stmails' extension; `stmails import listmonk` does the same)


@router.post(
    "/import/listmonk",
    dependencies=[require_permission("subscribers:import", "settings:manage", "users:manage")],
    summary="Import a listmonk database (Super Admin)",
)
async def start_listmonk_import(request: Request, caller: Caller) -> JSONResponse:
    """JSON `{"url": "postgresql://...", "settings": true}`: copies the listmonk database in
    the background, in the import slot (`GET /api/import/subscribers[/logs]` follow it). Only a
    Super Admin may: the import brings users and roles with their permissions."""
    if not caller.super_admin:
        raise ApiError(403, "permission denied: only a Super Admin may import a listmonk database")
    body = await json_object(request)
    url = body.get("url")
    settings = body.get("settings", True)
    if not isinstance(url, str) or not url.strip():
        raise bad_request("url: required (postgresql://user:password@host:5432/listmonk)")
    if not isinstance(settings, bool):
        raise bad_request("settings: must be true or false")
    try:
        source_engine(url).dispose()
    except ListmonkImportError as exc:
        raise bad_request(f"url: {exc}") from None
    state = app_state(request)
    owner = import_jobs.new_owner()
    status = ImportStatus(name="listmonk", status="importing")
    status.note("importing a listmonk database")
    if not await run_db(request, lambda s: import_jobs.claim(s, owner, status), write=True):
        raise ApiError(409, "an import is already running")
    threading.Thread(
        target=_run_listmonk,
        args=(state, owner, status, url, settings),
        name="stmails-listmonk-import",
        daemon=True,
    ).start()
    return data(_stats(import_jobs.ImportView(status.name, 0, 0, "importing")))


def _run_listmonk(
    state: AppState, owner: str, status: ImportStatus, url: str, settings: bool
) -> None:
    steps: dict[str, tuple[int, int]] = {}

    def progress(step: str, done: int, total: int) -> None:
        steps[step] = (done, max(done, total))
        status.imported = sum(d for d, _ in steps.values())
        status.total = sum(t for _, t in steps.values())
        with state.sessions() as session:
            import_jobs.save(session, owner, status)
            session.commit()

    try:
        report = import_listmonk(url, state.engine, settings=settings, progress=progress)
        for name, step in report.steps.items():
            status.note(f"{name}: {step.seen} read, {step.added} added, {step.matched} kept")
            for line in step.notes[:20]:
                status.note(f"{name}: {line}")
        status.status = "finished"
        status.note(f"listmonk schema {report.version} imported")
    except ListmonkImportError as exc:
        status.status = "failed"
        status.note(str(exc))
    except Exception:
        status.status = "failed"
        status.note("import failed: internal error (see the server log)")
        log.exception("listmonk import failed")
    try:
        with state.sessions() as session:
            import_jobs.save(session, owner, status)
            session.commit()
    except Exception:
        log.exception("could not store the listmonk import's final status")
