"""The Logs page (`/admin/logs`, `settings:maintain`): this server process's recent log lines,
filtered by level, refreshed by htmx every few seconds from `/admin/logs/lines` (the same lines
as `GET /api/logs`). Lines may quote mail and subscriber data: they are text, escaped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from stmails import logs
from stmails.web.admin.pages import page, render_page
from stmails.web.api.logs import LEVELS, level_of
from stmails.web.deps import Viewer
from stmails.web.errors import ApiError
from stmails.web.i18n import _

router = APIRouter()

LOGS_PATH = "/admin/logs"
REFRESH_SECONDS = 5


def _lines(level: str) -> tuple[str, list[str], str]:
    try:
        return level, logs.RECENT.lines(level_of(level)), ""
    except ApiError as exc:
        return "", [], exc.message


@router.get(LOGS_PATH, include_in_schema=False)
async def logs_page(
    request: Request,
    viewer: Annotated[Viewer, page("settings:maintain")],
    level: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    chosen, lines, error = _lines(level)
    return render_page(
        request,
        "admin/logs.html",
        viewer=viewer,
        section="logs",
        title=_("Logs"),
        status_code=400 if error else 200,
        error=error,
        level=chosen,
        levels=list(LEVELS),
        lines=lines,
        refresh=REFRESH_SECONDS,
    )


@router.get(LOGS_PATH + "/lines", include_in_schema=False)
async def log_lines(
    request: Request,
    viewer: Annotated[Viewer, page("settings:maintain")],
    level: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The lines alone, for the page's refresh."""
    _chosen, lines, error = _lines(level)
    return render_page(
        request,
        "admin/logs_lines.html",
        viewer=viewer,
        status_code=400 if error else 200,
        lines=lines,
    )
