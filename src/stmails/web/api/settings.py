"""listmonk's settings API: `GET`/`PUT /api/settings` (bounce settings and stmails' additions),
and `PUT /api/settings/{key}` (one setting; the body is its JSON value).

Secrets read as `••••••••`; sending that mask (or an empty string) back keeps the stored secret,
as listmonk does, so a client can GET, change one key and PUT everything back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.services import settings as settings_service
from stmails.web.api import media as media_api
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, json_value, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["settings"], dependencies=[Depends(require_user)])

# What an empty body reads as (null is a value a setting may take).
_NO_VALUE = object()


@router.get(
    "/settings",
    dependencies=[require_permission("settings:get")],
    summary="All settings (secrets masked)",
)
async def get_settings(request: Request) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        return settings_service.masked(settings_service.get_all(session))

    return data(await run_db(request, work))


@router.put(
    "/settings",
    dependencies=[require_permission("settings:manage")],
    summary="Change settings (masked secrets are kept)",
    openapi_extra=JSON_BODY,
)
async def put_settings(request: Request) -> JSONResponse:
    """Validates every key first, then stores them all; 400 naming the key when one is bad."""
    body = await json_object(request)
    # The upload folder or bucket is tried before the write transaction: a slow S3 server
    # never holds the database's write lock.
    await media_api.check_upload_settings(request, body)
    await run_db(request, lambda s: settings_service.update(s, body), write=True)
    return data(True)


@router.put(
    "/settings/{key}",
    dependencies=[require_permission("settings:manage")],
    summary="Change one setting (the body is its value)",
    openapi_extra=JSON_BODY,
)
async def put_setting(request: Request, key: str) -> JSONResponse:
    """listmonk's `PUT /api/settings/{key}`: validated and stored as one key of `PUT
    /api/settings` would be (400 naming it when bad)."""
    value = await json_value(request, empty=_NO_VALUE)
    if value is _NO_VALUE:
        raise bad_request(f"{key}: give the value as the JSON body")
    body = {key: value}
    await media_api.check_upload_settings(request, body)
    await run_db(request, lambda s: settings_service.update(s, body), write=True)
    return data(True)
