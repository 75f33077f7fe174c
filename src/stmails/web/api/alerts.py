"""Deliverability alerts (services.alerts): `GET /api/alerts` (filters and paging, listmonk's
`{"results", "total", "page", "per_page"}`), `GET /api/alerts/{id}`, and `PUT /api/alerts/{id}`
to acknowledge an alert (and release the domain a domain alert held)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from stmails.db.handles import Session
from stmails.services.alerts import store
from stmails.services.alerts.store import AlertFilter
from stmails.web.body import bool_field, json_object, run_db
from stmails.web.deps import Principal, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(require_user)])

From = Annotated[str | None, Query(alias="from")]


def _time(value: str | None, name: str, *, end: bool) -> datetime | None:
    """A date (a `to` date includes that day) or an RFC 3339 timestamp, in UTC."""
    if value in (None, ""):
        return None
    assert value is not None
    text = value.strip()
    if len(text) > 40:
        raise bad_request(f"{name}: not a date or timestamp")
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) if end else day
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise bad_request(f"{name}: not a date or timestamp") from None
    if when.tzinfo is None:
        raise bad_request(f"{name}: a timestamp needs its UTC offset")
    return when.astimezone(UTC)


def _number(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    assert value is not None
    if not value.isdigit() or len(value) > 9:
        raise bad_request(f"{name}: a positive number")
    return int(value)


@router.get(
    "",
    summary="Deliverability alerts, newest first",
    dependencies=[require_permission("alerts:get")],
)
async def list_alerts(
    request: Request,
    level: str | None = None,
    campaign_id: str | None = None,
    from_: From = None,
    to: str | None = None,
    acknowledged: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> JSONResponse:
    if acknowledged not in (None, "", "true", "false"):
        raise bad_request("acknowledged: true or false")
    filters = AlertFilter(
        level=level or None,
        campaign_id=_number(campaign_id, "campaign_id", 0) or None,
        since=_time(from_, "from", end=False),
        until=_time(to, "to", end=True),
        acknowledged=None if acknowledged in (None, "") else acknowledged == "true",
    )
    number = _number(page, "page", 1)
    size = _number(per_page, "per_page", 50)

    def work(session: Session) -> dict[str, Any]:
        results, total = store.list_alerts(session, filters, number, size)
        return {"results": results, "total": total, "page": number, "per_page": size}

    return data(await run_db(request, work))


@router.get(
    "/{alert_id}",
    summary="One alert with its deliveries",
    dependencies=[require_permission("alerts:get")],
)
async def get_alert(request: Request, alert_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: store.get_alert(s, alert_id)))


@router.put(
    "/{alert_id}",
    summary="Acknowledge an alert (and release the domain it held)",
    dependencies=[require_permission("alerts:manage")],
)
async def put_alert(
    request: Request, alert_id: int, principal: Annotated[Principal, Depends(require_user)]
) -> JSONResponse:
    body = await json_object(request)
    unknown = set(body) - {"acknowledged", "release_domain"}
    if unknown:
        raise bad_request(f"{sorted(unknown)[0]}: unknown field")
    acknowledged = body.get("acknowledged", True)
    if not isinstance(acknowledged, bool):
        raise bad_request("acknowledged: must be true or false")
    release = bool_field(body, "release_domain")

    def work(session: Session) -> dict[str, Any]:
        return store.acknowledge(
            session,
            alert_id,
            principal.username,
            acknowledged=acknowledged,
            release_domain=release,
        )

    return data(await run_db(request, work, write=True))
