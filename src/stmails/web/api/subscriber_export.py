"""listmonk's `GET /api/subscribers/export`: the subscribers a `query` (subscribers:sql_query),
`search`, `list_id` and `subscription_status` select, as streamed CSV (web.subscriber_export).

Included before the subscriber routes, whose `/subscribers/{subscriber_id}` would take
"export" for an id.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import SUBSCRIPTION_STATUSES
from stmails.services import subscriber_pages
from stmails.services.subscriber_query import query_deadline
from stmails.web import subscriber_export
from stmails.web.body import query_ids, run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission, require_permission_with
from stmails.web.responses import Repeated

router = APIRouter(tags=["subscribers"], dependencies=[Depends(require_user)])


@router.get(
    "/subscribers/export",
    dependencies=[
        require_permission("subscribers:get_all"),
        require_permission_with("query", "subscribers:sql_query"),
    ],
    summary="Export subscribers as CSV",
    response_class=Response,
)
async def export_subscribers(
    request: Request,
    query: str = "",
    search: str = "",
    list_id: Repeated = None,
    subscription_status: str = "",
) -> Response:
    """CSV with listmonk's columns: uuid, email, name, attributes (JSON), status, created_at,
    updated_at; in id order."""
    list_ids = query_ids(list_id or [], "list_id")
    if subscription_status and subscription_status not in SUBSCRIPTION_STATUSES:
        raise bad_request(f"subscription_status: one of {', '.join(SUBSCRIPTION_STATUSES)}")

    selection = subscriber_pages.Selection(
        query=query,
        search=search[:1000],
        list_ids=tuple(list_ids),
        subscription_status=subscription_status or None,
    )

    def check(session: Session) -> None:
        # Parsed and evaluated once before the download starts (QueryError is a 400).
        with query_deadline(session):
            subscriber_pages.screen_of(session, selection, size=1)

    await run_db(request, check)
    return subscriber_export.response(app_state(request).readonly_sessions, selection)
