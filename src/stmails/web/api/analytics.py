"""listmonk's analytics routes: `/api/campaigns/analytics/{type}`, `/api/dashboard/counts`,
`/api/dashboard/charts` and `/api/subscribers/{id}/activity` (services.analytics.listmonk)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from stmails.db.handles import Session
from stmails.db.models import Subscriber
from stmails.ingest.native import parse_timestamp
from stmails.services.analytics import listmonk
from stmails.services.tracking.links import tracking_config
from stmails.web.body import query_ids, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.list_scope import check_campaign, guard
from stmails.web.permissions import Caller, require_permission
from stmails.web.responses import JSONResponse, Repeated, data, timestamp

router = APIRouter(tags=["analytics"], dependencies=[Depends(require_user), guard])

# listmonk accepts dates and timestamps of 10 to 30 characters.
_DATE_LENGTHS = range(10, 31)


def _moment(value: str | None, name: str, *, end: bool) -> datetime:
    """listmonk's `from`/`to`: required; a bare date `to` includes that day."""
    text = (value or "").strip()
    if len(text) not in _DATE_LENGTHS:
        raise bad_request(f"{name}: invalid date (YYYY-MM-DD or an ISO 8601 timestamp)")
    try:
        when = parse_timestamp(text)
    except ValueError:
        raise bad_request(f"{name}: invalid date (YYYY-MM-DD or an ISO 8601 timestamp)") from None
    if end and len(text) == 10:
        # Up to the last instant of that day (listmonk compares with <=).
        when += timedelta(days=1) - timedelta(microseconds=1)
    return when


@router.get(
    "/campaigns/analytics/{kind}",
    dependencies=[require_permission("campaigns:get_analytics")],
    summary="Views, clicks, bounces or links of campaigns over time (listmonk)",
)
async def campaign_analytics(
    request: Request,
    caller: Caller,
    kind: str,
    id: Repeated = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> JSONResponse:
    if kind not in listmonk.ANALYTICS_TYPES:
        raise bad_request(f"type: one of {', '.join(listmonk.ANALYTICS_TYPES)}")
    ids = query_ids(id or [], "id")
    if not ids:
        raise bad_request("id: give one or more campaign ids (?id=1&id=2)")
    start = _moment(from_, "from", end=False)
    end = _moment(to, "to", end=True)
    if end < start:
        raise bad_request("to: must not be before from")

    def work(session: Session) -> list[dict[str, Any]]:
        # As listmonk: a caller limited to its lists' campaigns sees only theirs.
        for campaign_id in ids:
            check_campaign(session, caller, campaign_id, manage=False)
        individual = tracking_config(session).individual
        if kind == "links":
            return listmonk.link_counts(session, ids, start, end, individual=individual)
        counted: Literal["views", "clicks", "bounces"] = (
            "views" if kind == "views" else "clicks" if kind == "clicks" else "bounces"
        )
        return listmonk.campaign_counts(session, counted, ids, start, end, individual=individual)

    return data(await run_db(request, work))


@router.get(
    "/dashboard/counts",
    dependencies=[require_permission("campaigns:get_analytics")],
    summary="Subscriber, list, campaign and message counts (listmonk's dashboard)",
)
async def dashboard_counts(request: Request) -> JSONResponse:
    return data(await run_db(request, listmonk.dashboard_counts))


@router.get(
    "/dashboard/charts",
    dependencies=[require_permission("campaigns:get_analytics")],
    summary="Views and clicks per day over 30 days (listmonk's dashboard)",
)
async def dashboard_charts(request: Request) -> JSONResponse:
    return data(await run_db(request, listmonk.dashboard_charts))


@router.get(
    "/subscribers/{subscriber_id}/activity",
    dependencies=[require_permission("subscribers:get")],
    summary="A subscriber's campaign views and link clicks (listmonk)",
)
async def subscriber_activity(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        if session.get(Subscriber, subscriber_id) is None:
            raise not_found("subscriber")
        found = listmonk.subscriber_activity(session, subscriber_id)
        for row in found["campaign_views"]:
            row["last_viewed_at"] = timestamp(row["last_viewed_at"])
        for row in found["link_clicks"]:
            row["last_clicked_at"] = timestamp(row["last_clicked_at"])
        return found

    return data(await run_db(request, work))
