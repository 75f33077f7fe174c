"""listmonk's `GET /api/logs`: the recent log lines of this server process (`settings:maintain`).

The answer is listmonk's shape, `{"data": ["line", ...]}`, oldest first, from the in-memory
buffer `stmails.logs.RECENT` (the last `RECENT_LINES` records of the process that answers; with
several server processes each keeps its own). `?level=warning` keeps that level and above.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends

from stmails import logs
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(
    tags=["logs"], dependencies=[Depends(require_user), require_permission("settings:maintain")]
)

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def level_of(name: str) -> int:
    """The logging level a `level` parameter names ('' for every record); 400 otherwise."""
    if not name:
        return logging.NOTSET
    found = LEVELS.get(name.strip().lower())
    if found is None:
        raise bad_request(f"level: one of {', '.join(LEVELS)}")
    return found


@router.get("/logs", summary="Recent server log lines (listmonk's shape)")
async def get_logs(level: str = "") -> JSONResponse:
    return data(logs.RECENT.lines(level_of(level)))
