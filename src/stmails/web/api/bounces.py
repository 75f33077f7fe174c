"""listmonk's bounce API: `/api/bounces` (list, CSV export, get, delete, blocklist)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse
from sqlalchemy.orm import Session

from stmails.services import bounce_admin
from stmails.services.bounce_admin import BounceFilter, BounceRow
from stmails.web import serialize
from stmails.web.body import run_db
from stmails.web.csvexport import csv_lines
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.responses import JSONResponse, data, parse_order, parse_page, timestamp

router = APIRouter(tags=["bounces"], dependencies=[Depends(require_user)])

CSV_HEADER = [
    "id",
    "created_at",
    "email",
    "subscriber_uuid",
    "type",
    "effective_type",
    "reason",
    "status",
    "source",
    "campaign_id",
    "campaign_name",
    "diagnostic",
]
CSV_ROWS_PER_CHUNK = 200


def _date(value: str | None, field: str, end_of_day: bool) -> datetime | None:
    if value in (None, ""):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"{field}: not an ISO 8601 date or timestamp") from None
    if len(text) == 10 and end_of_day:
        when = datetime.combine(when.date(), time.max)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _positive(value: str | None, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{field}: must be an integer id") from None
    if number < 1:
        raise bad_request(f"{field}: must be a positive integer id")
    return number


def _json(row: BounceRow) -> dict[str, Any]:
    return serialize.bounce(row.bounce, row.subscriber_uuid, row.campaign)


def _csv_row(row: BounceRow) -> list[Any]:
    b = row.bounce
    campaign_id, campaign_name = row.campaign if row.campaign else ("", "")
    return [
        b.id,
        timestamp(b.created_at),
        b.email,
        row.subscriber_uuid or "",
        b.type,
        b.effective_type,
        b.reason,
        b.status,
        b.source,
        campaign_id,
        campaign_name,
        b.diagnostic,
    ]


def _wants_csv(request: Request, format: str | None) -> bool:
    if format:
        if format.lower() not in ("csv", "json"):
            raise bad_request("format: 'json' or 'csv'")
        return format.lower() == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept.lower()


@router.get("/bounces", summary="List bounces (JSON, or CSV with ?format=csv / Accept: text/csv)")
async def list_bounces(
    request: Request,
    campaign_id: str | None = None,
    source: str = "",
    type: str = "",
    reason: str = "",
    email: str = "",
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    order_by: str = "created_at",
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
    format: str | None = None,
) -> Any:
    """listmonk's `GET /api/bounces` with stmails' extra filters and a streamed CSV export."""
    filters = BounceFilter(
        campaign_id=_positive(campaign_id, "campaign_id"),
        source=source.strip(),
        type=type.strip(),
        reason=reason.strip(),
        email=email.strip(),
        since=_date(from_, "from", end_of_day=False),
        until=_date(to, "to", end_of_day=True),
    )
    direction = parse_order(order, default="desc")
    if _wants_csv(request, format):
        # Check the ordering before the response starts: errors after that cannot be a 400.
        if order_by not in bounce_admin.ORDER_FIELDS:
            raise bad_request(f"order_by: one of {', '.join(bounce_admin.ORDER_FIELDS)}")
        return _csv_response(request, filters, order_by, direction)
    paging = parse_page(page, per_page)

    def work(session: Session) -> dict[str, Any]:
        rows, total = bounce_admin.search(
            session, filters, order_by, direction, paging.offset, paging.limit
        )
        return paging.envelope([_json(r) for r in rows], total)

    return data(await run_db(request, work))


def _csv_response(
    request: Request, filters: BounceFilter, order_by: str, order: str
) -> StreamingResponse:
    sessions = app_state(request).readonly_sessions

    def chunks() -> Iterator[str]:
        with sessions() as session:
            rows = bounce_admin.stream(session, filters, order_by, order)
            buffered: list[str] = []
            for line in csv_lines(CSV_HEADER, (_csv_row(r) for r in rows)):
                buffered.append(line)
                if len(buffered) >= CSV_ROWS_PER_CHUNK:
                    yield "".join(buffered)
                    buffered.clear()
            if buffered:
                yield "".join(buffered)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="bounces-{stamp}.csv"'},
    )


@router.get("/bounces/{bounce_id}", summary="Get one bounce")
async def get_bounce(request: Request, bounce_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        row = bounce_admin.get(session, bounce_id)
        if row is None:
            raise not_found("bounce")
        return _json(row)

    return data(await run_db(request, work))


@router.delete("/bounces/{bounce_id}", summary="Delete one bounce")
async def delete_bounce(request: Request, bounce_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        if bounce_admin.delete_ids(session, [bounce_id]) == 0:
            raise not_found("bounce")
        return True

    return data(await run_db(request, work, write=True))


@router.delete("/bounces", summary="Delete bounces by id (?id=1&id=2) or all (?all=true)")
async def delete_bounces(
    request: Request, id: list[str] = Query(default=[]), all: str = ""
) -> JSONResponse:
    if all.lower() == "true":
        await run_db(request, bounce_admin.delete_all, write=True)
        return data(True)
    ids: list[int] = []
    for value in id:
        number = _positive(value, "id")
        if number is not None:
            ids.append(number)
    if not ids:
        raise bad_request("id: give bounce ids (?id=1&id=2) or all=true")
    await run_db(request, lambda s: bounce_admin.delete_ids(s, ids), write=True)
    return data(True)


@router.put("/bounces/blocklist", summary="Blocklist every subscriber that has bounced")
async def blocklist_bounced(request: Request) -> JSONResponse:
    await run_db(request, bounce_admin.blocklist_bounced, write=True)
    return data(True)
