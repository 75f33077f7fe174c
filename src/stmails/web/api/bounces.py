"""listmonk's bounce API: `/api/bounces` (list, CSV export, get, delete, blocklist)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import StreamingResponse

from stmails.db.handles import Session
from stmails.ingest.native import parse_timestamp
from stmails.services import bounces as bounce_service
from stmails.services.bounces import BounceFilter, BounceRow
from stmails.web import serialize
from stmails.web.body import query_ids, run_db
from stmails.web.csvexport import csv_lines
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, ListingParams, Repeated, data, timestamp

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
EXPORT_PAGE = 1000
ORDER_FIELDS = ("created_at", "email", "campaign_name", "source", "type", "reason", "id")


def _date(value: str | None, field: str, end_of_day: bool) -> datetime | None:
    """The UTC instant of `from`/`to`; a bare date `to` means up to the end of that day."""
    if value is None or value == "":
        return None
    try:
        when = parse_timestamp(value)
    except ValueError:
        raise bad_request(f"{field}: not an ISO 8601 date or timestamp") from None
    if len(value.strip()) == 10 and end_of_day:
        when = when + timedelta(days=1)
    return when


def _csv_row(row: BounceRow) -> list[Any]:
    return [
        row.id,
        timestamp(row.created_at),
        row.email,
        row.subscriber_uuid or "",
        row.type,
        row.effective_type,
        row.reason,
        row.status,
        row.source,
        row.campaign_id if row.campaign_id is not None else "",
        row.campaign_name or "",
        row.diagnostic,
    ]


def _bounce_type(value: str) -> str | None:
    kind = value.strip()
    if kind and kind not in ("hard", "soft", "complaint"):
        raise bad_request("type: one of hard, soft, complaint")
    return kind or None


def bounce_filter(
    *,
    campaign_id: str | None = None,
    source: str = "",
    type: str = "",
    reason: str = "",
    email: str = "",
    domain: str = "",
    from_: str | None = None,
    to: str | None = None,
) -> BounceFilter:
    """The filters of `GET /api/bounces` (and of the admin Bounces page) from their query
    parameters; a 400 ApiError names a bad one."""
    return BounceFilter(
        campaign_id=next(iter(query_ids([campaign_id or ""], "campaign_id")), None),
        source=source.strip() or None,
        type=_bounce_type(type),
        reason=reason.strip() or None,
        email=email.strip() or None,
        domain=domain.strip() or None,
        since=_date(from_, "from", end_of_day=False),
        until=_date(to, "to", end_of_day=True),
    )


def _wants_csv(request: Request, format: str | None) -> bool:
    if format:
        if format.lower() not in ("csv", "json"):
            raise bad_request("format: 'json' or 'csv'")
        return format.lower() == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept.lower()


@router.get(
    "/bounces",
    dependencies=[require_permission("bounces:get")],
    summary="List bounces (JSON, or CSV with ?format=csv / Accept: text/csv)",
)
async def list_bounces(
    request: Request,
    listing: ListingParams,
    campaign_id: str | None = None,
    source: str = "",
    type: str = "",
    reason: str = "",
    email: str = "",
    domain: str = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    format: str | None = None,
) -> Any:
    """listmonk's `GET /api/bounces` with stmails' extra filters and a streamed CSV export."""
    filters = bounce_filter(
        campaign_id=campaign_id,
        source=source,
        type=type,
        reason=reason,
        email=email,
        domain=domain,
        from_=from_,
        to=to,
    )
    paging = listing.paging
    order_by = listing.order_by or "created_at"
    direction = listing.order or "desc"
    if _wants_csv(request, format):
        # Check the ordering before the response starts: errors after that cannot be a 400.
        if order_by not in ORDER_FIELDS:
            raise bad_request(f"order_by: one of {', '.join(ORDER_FIELDS)}")
        return _csv_response(request, filters, order_by, direction)

    def work(session: Session) -> dict[str, Any]:
        found = bounce_service.list_bounces(
            session,
            filters,
            order_by=order_by,
            order=direction,
            page=paging.page,
            per_page=paging.per_page,
        )
        return paging.envelope([serialize.bounce(r) for r in found.results], found.total)

    return data(await run_db(request, work))


def _csv_response(
    request: Request, filters: BounceFilter, order_by: str, order: str
) -> StreamingResponse:
    sessions = app_state(request).readonly_sessions

    def rows(session: Session) -> Iterator[BounceRow]:
        page = 1
        while True:
            found = bounce_service.list_bounces(
                session, filters, order_by=order_by, order=order, page=page, per_page=EXPORT_PAGE
            )
            yield from found.results
            if len(found.results) < EXPORT_PAGE:
                return
            page += 1

    def chunks() -> Iterator[str]:
        with sessions() as session:
            buffered: list[str] = []
            for line in csv_lines(CSV_HEADER, (_csv_row(r) for r in rows(session))):
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


@router.get(
    "/bounces/{bounce_id}",
    dependencies=[require_permission("bounces:get")],
    summary="Get one bounce",
)
async def get_bounce(request: Request, bounce_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        row = bounce_service.get_bounce(session, bounce_id)
        if row is None:
            raise not_found("bounce")
        return serialize.bounce(row)

    return data(await run_db(request, work))


@router.delete(
    "/bounces/{bounce_id}",
    dependencies=[require_permission("bounces:manage")],
    summary="Delete one bounce",
)
async def delete_bounce(request: Request, bounce_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        if bounce_service.delete_bounces(session, BounceFilter(ids=[bounce_id])) == 0:
            raise not_found("bounce")
        return True

    return data(await run_db(request, work, write=True))


@router.delete(
    "/bounces",
    dependencies=[require_permission("bounces:manage")],
    summary="Delete bounces by id (?id=1&id=2) or all (?all=true)",
)
async def delete_bounces(request: Request, id: Repeated = None, all: str = "") -> JSONResponse:
    if all.lower() == "true":
        await run_db(
            request, lambda s: bounce_service.delete_bounces(s, BounceFilter()), write=True
        )
        return data(True)
    ids = query_ids(id or [], "id")
    if not ids:
        raise bad_request("id: give bounce ids (?id=1&id=2) or all=true")
    await run_db(
        request, lambda s: bounce_service.delete_bounces(s, BounceFilter(ids=ids)), write=True
    )
    return data(True)


@router.put(
    "/bounces/blocklist",
    dependencies=[require_permission("bounces:manage")],
    summary="Blocklist every subscriber that has bounced",
)
async def blocklist_bounced(request: Request) -> JSONResponse:
    await run_db(request, lambda s: bounce_service.blocklist_bounced(s), write=True)
    return data(True)
