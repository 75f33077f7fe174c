"""The suppression list API, in the style of SparkPost's (`/api/suppressions`).

- `PUT /api/suppressions`: bulk upsert of up to 10,000 entries (`{"recipients": [...]}` or a
  bare JSON array). Each entry has one of `recipient` (or `email`), `email_hash` or `domain`,
  and optionally `scope` (global|list), `list_id`, `reason`, `source`, `description`,
  `expires_at`. All entries are validated first: one bad entry refuses the request (400 naming
  its index) and nothing is written.
- `GET /api/suppressions/{email}`: whether the address is suppressed, by which entries, since
  when (404 when no entry concerns it, as SparkPost answers).
- `GET /api/suppressions`: filters `reason`, `source`, `scope`, `list_id`, `kind`
  (address|hash|domain), `from`/`to` (created_at, ISO 8601), `query`; listmonk's pagination;
  `format=csv` streams every matching entry as CSV.
- `DELETE /api/suppressions/{target}`: an address, a sha256 hash or a domain (optionally one
  `scope`/`list_id`); 404 when nothing matched.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.db.handles import Session
from stmails.db.models import SUPPRESSION_REASONS, SUPPRESSION_SCOPES
from stmails.services import suppression, suppression_csv
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data, parse_page

router = APIRouter(tags=["suppressions"], dependencies=[Depends(require_user)])

# PUT bodies may hold 10,000 entries: allow them this many bytes (mount with the body cap).
MAX_BODY_BYTES = 16 * 1024 * 1024


def _entries(body: Any) -> list[Any]:
    if isinstance(body, dict):
        body = body.get("recipients", body.get("entries"))
    if not isinstance(body, list):
        raise bad_request('body: expected {"recipients": [...]} or a JSON array of entries')
    if not body:
        raise bad_request("recipients: give at least one entry")
    if len(body) > suppression.MAX_UPSERT:
        raise bad_request(f"recipients: at most {suppression.MAX_UPSERT} entries per request")
    return body


@router.put(
    "/suppressions",
    dependencies=[require_permission("suppressions:manage")],
    summary="Insert or update suppression entries",
    openapi_extra=JSON_BODY,
)
async def upsert_suppressions(request: Request) -> JSONResponse:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise bad_request("body: not valid JSON") from None
    if too_deep(body):
        raise bad_request(f"body: nests deeper than {MAX_JSON_DEPTH} levels")
    parsed = []
    for index, raw in enumerate(_entries(body)):
        if not isinstance(raw, dict):
            raise bad_request(f"recipients[{index}]: expected an object")
        try:
            parsed.append(suppression.parse_entry(raw))
        except suppression.SuppressionInputError as exc:
            raise bad_request(f"recipients[{index}]: {exc}") from None
    count = await run_db(request, lambda s: suppression.upsert_many(s, parsed), write=True)
    return data({"upserted": count})


@router.get(
    "/suppressions/{email}",
    dependencies=[require_permission("suppressions:get")],
    summary="Is this address suppressed, why, since when",
)
async def get_suppression(request: Request, email: str) -> JSONResponse:
    if "@" not in email:
        raise bad_request("email: not an e-mail address")

    def work(session: Session) -> dict[str, Any] | None:
        entries = suppression.entries_for(session, email)
        if not entries:
            return None
        status = suppression.check_batch_detail(session, [email]).get(email.strip().lower())
        blocking = status.blocking([]) if status is not None else None
        return {
            "recipient": email.strip().lower(),
            "suppressed": blocking is not None,
            "suppressed_lists": sorted(status.list_hits) if status is not None else [],
            "results": [suppression.entry_to_dict(e) for e in entries],
        }

    found = await run_db(request, work)
    if found is None:
        raise ApiError(404, "the address is not on the suppression list")
    return data(found)


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name}: not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise bad_request(f"{name}: give a time zone (e.g. 2030-01-01T00:00:00Z)")
    return parsed


def _filters(request: Request) -> suppression.SearchFilters:
    params = request.query_params
    reason = params.get("reason", "")
    scope = params.get("scope", "")
    kind = params.get("kind", "")
    if reason and reason not in SUPPRESSION_REASONS:
        raise bad_request(f"reason: expected one of {', '.join(SUPPRESSION_REASONS)}")
    if scope and scope not in SUPPRESSION_SCOPES:
        raise bad_request(f"scope: expected one of {', '.join(SUPPRESSION_SCOPES)}")
    if kind and kind not in {"address", "hash", "domain"}:
        raise bad_request("kind: expected address, hash or domain")
    list_raw = params.get("list_id", "")
    if list_raw and not list_raw.isdigit():
        raise bad_request("list_id: expected a number")
    return suppression.SearchFilters(
        reason=reason,
        source=params.get("source", ""),
        scope=scope,
        list_id=int(list_raw) if list_raw else None,
        kind=kind,
        since=_time(params.get("from"), "from"),
        until=_time(params.get("to"), "to"),
        query=params.get("query", "")[:200],
    )


@router.get(
    "/suppressions",
    dependencies=[require_permission("suppressions:get")],
    summary="Search the suppression list (JSON or CSV)",
)
async def list_suppressions(request: Request) -> Any:
    filters = _filters(request)
    if request.query_params.get("format") == "csv":
        return _csv_response(request, filters)
    paging = parse_page(request.query_params.get("page"), request.query_params.get("per_page"))

    def work(session: Session) -> dict[str, Any]:
        rows, total = suppression.search(session, filters, offset=paging.offset, limit=paging.limit)
        return paging.envelope([suppression.entry_to_dict(r) for r in rows], total, filters.query)

    return data(await run_db(request, work))


def _csv_response(request: Request, filters: suppression.SearchFilters) -> StreamingResponse:
    sessions = app_state(request).readonly_sessions

    def lines() -> Iterator[str]:
        with sessions() as session:
            yield from suppression_csv.export_lines(session, filters)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@router.delete(
    "/suppressions/{target}",
    dependencies=[require_permission("suppressions:manage")],
    summary="Remove an address, hash or domain",
)
async def delete_suppression(request: Request, target: str) -> JSONResponse:
    scope = request.query_params.get("scope", "")
    if scope and scope not in SUPPRESSION_SCOPES:
        raise bad_request(f"scope: expected one of {', '.join(SUPPRESSION_SCOPES)}")
    list_raw = request.query_params.get("list_id", "")
    if list_raw and not list_raw.isdigit():
        raise bad_request("list_id: expected a number")
    list_id = int(list_raw) if list_raw else None
    removed = await run_db(
        request,
        lambda s: suppression.remove_matching(s, target, scope=scope, list_id=list_id),
        write=True,
    )
    if not removed:
        raise ApiError(404, "no suppression entry matches")
    return data({"deleted": removed})
