"""listmonk's maintenance routes (`settings:maintain`):

- `DELETE /api/maintenance/subscribers/{blocklisted|orphan}`: `{"data": {"count": N}}`.
- `DELETE /api/maintenance/subscriptions/unconfirmed?before_date=<RFC 3339>`: unconfirmed
  double opt-in subscriptions made before the date; `{"data": {"count": N}}`.
- `DELETE /api/maintenance/analytics/{all|views|clicks}?before_date=<RFC 3339>`: opens and/or
  clicks recorded before the date (the figures keep their counts); `{"data": true}`.
- `GET /api/maintenance/analytics/{views|clicks}/export?since=<RFC 3339>`: those recorded since
  the date as CSV, streamed in batches.

See services.maintenance for what each deletes and keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from stmails.db.handles import Session
from stmails.ingest.native import parse_timestamp
from stmails.services import maintenance
from stmails.web.body import run_db
from stmails.web.csvexport import csv_lines
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data, timestamp

router = APIRouter(
    tags=["maintenance"],
    dependencies=[Depends(require_user), require_permission("settings:maintain")],
)

# Rows read per batch of an export (each batch in a short read transaction of its own).
EXPORT_BATCH = 5000


def _date(value: str, name: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise bad_request(f"{name}: give an RFC 3339 timestamp") from None


@router.delete(
    "/maintenance/subscribers/{kind}", summary="Delete blocklisted or orphan subscribers"
)
async def delete_subscribers(request: Request, kind: str) -> JSONResponse:
    if kind not in maintenance.SUBSCRIBER_KINDS:
        raise bad_request(f"type: one of {', '.join(maintenance.SUBSCRIBER_KINDS)}")
    count = await run_db(request, lambda s: maintenance.delete_subscribers(s, kind), write=True)
    return data({"count": count})


@router.delete(
    "/maintenance/subscriptions/unconfirmed",
    summary="Delete old unconfirmed double opt-in subscriptions",
)
async def delete_unconfirmed(request: Request, before_date: str = "") -> JSONResponse:
    before = _date(before_date, "before_date")

    def work(session: Session) -> int:
        return maintenance.delete_unconfirmed_subscriptions(session, before)

    return data({"count": await run_db(request, work, write=True)})


@router.delete("/maintenance/analytics/{kind}", summary="Delete old opens and clicks")
async def delete_analytics(request: Request, kind: str, before_date: str = "") -> JSONResponse:
    if kind not in maintenance.ANALYTICS_KINDS:
        raise bad_request(f"type: one of {', '.join(maintenance.ANALYTICS_KINDS)}")
    before = _date(before_date, "before_date")
    await run_db(request, lambda s: maintenance.delete_engagement(s, kind, before), write=True)
    return data(True)


@router.get("/maintenance/analytics/{kind}/export", summary="Opens or clicks since a date, as CSV")
async def export_analytics(request: Request, kind: str, since: str = "") -> StreamingResponse:
    if kind not in maintenance.EXPORT_KINDS:
        raise bad_request(f"type: one of {', '.join(maintenance.EXPORT_KINDS)}")
    start = _date(since, "since")
    sessions = app_state(request).readonly_sessions

    def rows() -> Iterator[list[Any]]:
        after = 0
        while True:
            with sessions() as session:
                after, batch = maintenance.engagement_batch(
                    session, kind, start, after, EXPORT_BATCH
                )
            if not batch:
                return
            for row in batch:
                yield [timestamp(v) if isinstance(v, datetime) else v for v in row]

    header = maintenance.VIEW_COLUMNS if kind == "views" else maintenance.CLICK_COLUMNS
    return StreamingResponse(
        csv_lines(header, rows()),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="campaign_{kind}.csv"',
            "Cache-Control": "no-cache",
        },
    )
