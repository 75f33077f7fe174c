"""`/` and the admin home: a dashboard shell with recent bounces and subscribers per list.

The dashboard's figures come later; what it shows now exercises the shell's components: a
paged table of values that came from mail and webhooks (escaped like everything), and a chart
fed by the JSON API (`GET /api/lists`) through the browser session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from stmails.services import bounces as bounce_service
from stmails.services.pages import Page
from stmails.web.admin.pages import ADMIN_HOME, can, page, render_page
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.i18n import _

router = APIRouter()

RECENT_BOUNCES = 10


@router.get("/", include_in_schema=False)
async def root() -> Response:
    """The site's root opens the admin UI."""
    return RedirectResponse(ADMIN_HOME, status_code=303)


@router.get(ADMIN_HOME, include_in_schema=False)
async def dashboard(
    request: Request,
    viewer: Annotated[Viewer, page()],
    bounces_page: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    bounces: Page[bounce_service.BounceRow] | None = None
    if can(viewer, "bounces:get"):

        def recent(session: Session) -> Page[bounce_service.BounceRow]:
            return bounce_service.list_bounces(session, page=bounces_page, per_page=RECENT_BOUNCES)

        bounces = await run_db(request, recent)
    return render_page(
        request,
        "admin/home.html",
        viewer=viewer,
        section="dashboard",
        title=_("Dashboard"),
        bounces=bounces,
    )
