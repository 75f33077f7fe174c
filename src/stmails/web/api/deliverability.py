"""stmails' deliverability API: `/api/deliverability/summary`, `/breakdown` and `/report`
(services.analytics.deliverability; every figure defined in docs/deliverability.md).

JSON by default; `?format=csv` (or `Accept: text/csv`) gives the same figures as CSV, every cell
neutralized for spreadsheets: the breakdown as one row per type, reason, source, domain,
provider and trend point; the summary and the report as (figure, value) rows named by their
JSON path (`rates.bounce`, `top_reasons.0.reason`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from stmails.db.handles import Session
from stmails.services.analytics import deliverability
from stmails.services.analytics.deliverability import Filters, VerificationJob
from stmails.services.analytics.window import parse_window
from stmails.services.csvexport import csv_chunks
from stmails.verify.jobs import JobStore
from stmails.web.body import query_ids, run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import data

router = APIRouter(
    prefix="/deliverability",
    tags=["deliverability"],
    dependencies=[Depends(require_user), require_permission("deliverability:get")],
)

DOMAIN_ORDERS = ("sent", "bounced", "bounce_rate", "complaints", "domain")
MAX_DOMAINS = 10_000
From = Annotated[str | None, Query(alias="from")]


def _wants_csv(request: Request, format: str | None) -> bool:
    if format:
        if format.lower() not in ("csv", "json"):
            raise bad_request("format: 'json' or 'csv'")
        return format.lower() == "csv"
    return "text/csv" in request.headers.get("accept", "").lower()


def _one_id(value: str | None, name: str) -> int | None:
    ids = query_ids([value], name) if value not in (None, "") else []
    return ids[0] if ids else None


def _filters(
    start: str | None, end: str | None, campaign_id: str | None, list_id: str | None, scope: str
) -> Filters:
    if scope not in ("campaigns", "all"):
        raise bad_request("scope: 'campaigns' or 'all'")
    return Filters(
        parse_window(start, end),
        campaign_id=_one_id(campaign_id, "campaign_id"),
        list_id=_one_id(list_id, "list_id"),
        everything=scope == "all",
    )


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted name, scalar) pairs of a JSON-like value; list items by index."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        yield prefix, value
        return
    for key, item in items:
        yield from _flat(f"{prefix}.{key}" if prefix else str(key), item)


def _csv(name: str, rows: Iterable[list[Any]], header: list[str]) -> Response:
    # The figures are all read (and the transaction ended) before the first byte: streaming
    # only spreads the formatting of a large breakdown (every domain) over the sending.
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        csv_chunks(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
    )


# The columns of the breakdown's CSV: a row's section, its key, then every figure any row has.
BREAKDOWN_COLUMNS = [
    "section",
    "key",
    "sent",
    "delivered",
    "bounced",
    "hard",
    "soft",
    "complaints",
    "total",
    "count",
    "rate",
    "bounce_rate",
    "complaint_rate",
    "above_threshold",
    "channel",
    "opens",
    "clicks",
]


def _breakdown_rows(result: dict[str, Any]) -> Iterator[list[Any]]:
    sections = (
        ("by_type", "type", result["by_type"]),
        ("by_reason", "reason", result["by_reason"]),
        ("by_source", "source", result["by_source"]),
        ("by_domain", "domain", result["by_domain"]["results"]),
        ("complaints_by_provider", "provider", result["complaints"]["by_provider"]),
        ("trend", "time", result["trend"]["points"]),
    )
    for section, key, rows in sections:
        for row in rows:
            yield [section, row[key], *(row.get(c, "") for c in BREAKDOWN_COLUMNS[2:])]


@router.get("/summary", summary="Deliverability figures of a period, campaign or list")
async def get_summary(
    request: Request,
    from_: From = None,
    to: str | None = None,
    campaign_id: str | None = None,
    list_id: str | None = None,
    format: str | None = None,
) -> Response:
    filters = _filters(from_, to, campaign_id, list_id, "campaigns")
    result = await run_db(request, lambda s: deliverability.summary(s, filters))
    if _wants_csv(request, format):
        rows = ([k, v] for k, v in _flat("", result))
        return _csv("deliverability-summary", rows, ["figure", "value"])
    return data(result)


@router.get("/breakdown", summary="Bounces by type, reason, domain and source, with a trend")
async def get_breakdown(
    request: Request,
    from_: From = None,
    to: str | None = None,
    campaign_id: str | None = None,
    list_id: str | None = None,
    scope: str = "campaigns",
    interval: str = "day",
    order_by: str = "sent",
    limit: str = "100",
    min_sent: str = "0",
    format: str | None = None,
) -> Response:
    filters = _filters(from_, to, campaign_id, list_id, scope)
    if interval not in ("day", "hour"):
        raise bad_request("interval: 'day' or 'hour'")
    if order_by not in DOMAIN_ORDERS:
        raise bad_request(f"order_by: one of {', '.join(DOMAIN_ORDERS)}")
    shown = _count(limit, "limit", allow_all=True)
    least = _count(min_sent, "min_sent") or 0

    def work(session: Session) -> dict[str, Any]:
        return deliverability.breakdown(
            session,
            filters,
            interval="hour" if interval == "hour" else "day",
            order=order_by,  # type: ignore[arg-type]
            limit=shown,
            min_sent=least,
        )

    result = await run_db(request, work)
    if _wants_csv(request, format):
        return _csv("deliverability-breakdown", _breakdown_rows(result), BREAKDOWN_COLUMNS)
    return data(result)


def _count(value: str, name: str, *, allow_all: bool = False) -> int | None:
    if allow_all and value.lower() == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name}: a number{' or all' if allow_all else ''}") from None
    if number < 0 or number > (MAX_DOMAINS if allow_all else 10**12):
        raise bad_request(f"{name}: out of range")
    return number


def _verification_jobs(data_dir: Path) -> list[VerificationJob]:
    """The verification jobs kept under `data_dir` (verify.jobs), as the report reads them."""
    store = JobStore(data_dir)
    if not data_dir.is_dir():
        return []
    jobs = []
    for path in sorted(data_dir.iterdir()):
        job = store.get(path.name) if path.is_dir() else None
        if job is not None:
            jobs.append(
                VerificationJob(
                    datetime.fromtimestamp(job.created_at, UTC), job.total, dict(job.counts)
                )
            )
    return jobs


@router.get("/report", summary="The monthly deliverability report")
async def get_report(request: Request, month: str = "", format: str | None = None) -> Response:
    if not month:
        raise bad_request("month: required (YYYY-MM)")
    data_dir = app_state(request).settings.data_dir / "verify"

    def work(session: Session) -> dict[str, Any]:
        return deliverability.report(session, month, _verification_jobs(data_dir))

    result = await run_db(request, work)
    if _wants_csv(request, format):
        rows = ([k, v] for k, v in _flat("", result))
        return _csv(f"deliverability-report-{result['month']}", rows, ["figure", "value"])
    return data(result)
