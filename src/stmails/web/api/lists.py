"""listmonk's list API: `/api/lists`.

- `GET /api/lists`: `query` (part of the name), `status` (`active`, `archived`), `type`,
  `optin`, `tag` (repeat; a list must carry every one), `order_by` (`id`, `name`, `type`,
  `status`, `created_at`, `updated_at`, `subscriber_count`), `order`, `page`, `per_page`, and
  `minimal` (every matching list by id, without subscriber counts: listmonk's fast form, which
  answers `{"data": []}` when there is none).
- `GET`/`PUT`/`DELETE /api/lists/{id}`, `POST /api/lists` (`name`, `type`, `optin`, `status`,
  `tags`, `description`).
- `DELETE /api/lists?id=1&id=2`, or `?query=name` (`&all=true` with an empty query deletes every
  list), as listmonk.

A user whose role lacks `lists:get_all` (`lists:manage_all`) reads (manages) the lists its list
role grants `list:get` (`list:manage`) on, and no other (web.list_scope).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import MailingList
from stmails.services import lists as list_service
from stmails.web import serialize
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import act_on_one, json_object, query_ids, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.list_scope import guard, manageable, readable, require_lists
from stmails.web.permissions import Caller, permission_denied, require_permission
from stmails.web.responses import JSONResponse, ListingParams, Repeated, data, parse_bool

router = APIRouter(tags=["lists"], dependencies=[Depends(require_user), guard])


def _one(session: Session, item: MailingList) -> dict[str, Any]:
    return serialize.mailing_list(item, list_service.counts(session, [item.id])[item.id])


def _single(values: list[str] | None, name: str) -> str | None:
    """The one value of a filter parameter (None when absent or blank); 400 when repeated."""
    given = [v for v in values or [] if v.strip()]
    if len(given) > 1:
        raise bad_request(f"{name}: give one value")
    return given[0].strip() if given else None


@router.get("/lists", dependencies=[require_lists(False)], summary="List mailing lists")
async def list_lists(
    request: Request,
    caller: Caller,
    listing: ListingParams,
    query: str = "",
    status: Repeated = None,
    type: Repeated = None,
    optin: Repeated = None,
    tag: Repeated = None,
    tags: Repeated = None,
    minimal: str = "",
) -> JSONResponse:
    """listmonk's `GET /api/lists`: name search, status, type, opt-in and tag filters."""
    paging = listing.paging
    wanted_status = _single(status, "status")
    wanted_type = _single(type, "type")
    wanted_optin = _single(optin, "optin")
    wanted_tags = (tag or []) + (tags or [])
    within = readable(caller)
    if parse_bool(minimal, "minimal"):
        return await _minimal(request, wanted_status, within)
    order_by = listing.order_by or "id"
    direction = listing.order or "asc"

    def work(session: Session) -> dict[str, Any]:
        found = list_service.list_lists(
            session,
            search=query,
            tags=wanted_tags,
            list_type=wanted_type,
            optin=wanted_optin,
            status=wanted_status,
            within=within,
            order_by=order_by,
            order=direction,
            page=paging.page,
            per_page=paging.per_page,
        )
        counts = list_service.counts(session, [r.id for r in found.results])
        results = [serialize.mailing_list(r, counts[r.id]) for r in found.results]
        return paging.envelope(results, found.total, query)

    return data(await run_db(request, work))


async def _minimal(
    request: Request, status: str | None, within: frozenset[int] | None
) -> JSONResponse:
    """listmonk's `minimal=true`: every list (of `status`) by id, no counts, one page."""

    def work(session: Session) -> list[dict[str, Any]]:
        found = list_service.list_lists(session, status=status, within=within, per_page=None)
        return [serialize.mailing_list(r) for r in found.results]

    results = await run_db(request, work)
    if not results:
        # listmonk answers an empty array here, not an empty page.
        return data([])
    total = len(results)
    return data(
        {"results": results, "query": "", "search": "", "total": total, "per_page": total,
         "page": 1}
    )  # fmt: skip


@router.get("/lists/{list_id}", dependencies=[require_lists(False)], summary="Get one list")
async def get_list(request: Request, list_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, list_service.get(s, list_id))))


@router.post(
    "/lists",
    dependencies=[require_permission("lists:manage_all")],
    summary="Create a list",
    openapi_extra=JSON_BODY,
)
async def create_list(request: Request) -> JSONResponse:
    """listmonk's `POST /api/lists`: name, type, optin, status, tags, description."""
    fields = list_service.body_fields(await json_object(request))
    if not fields.get("name"):
        raise bad_request("name: required")

    def work(session: Session) -> dict[str, Any]:
        return _one(session, list_service.create(session, **fields))

    return data(await run_db(request, work, write=True))


@router.put(
    "/lists/{list_id}",
    dependencies=[require_lists(True)],
    summary="Update a list",
    openapi_extra=JSON_BODY,
)
async def update_list(request: Request, list_id: int) -> JSONResponse:
    """Changes the fields present (listmonk's PUT takes any subset)."""
    fields = list_service.body_fields(await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        found = list_service.get(session, list_id)
        return _one(session, list_service.update_list(session, found, **fields))

    return data(await run_db(request, work, write=True))


@router.delete(
    "/lists/{list_id}",
    dependencies=[require_lists(True)],
    summary="Delete a list",
)
async def delete_list(request: Request, list_id: int) -> JSONResponse:
    return await act_on_one(request, list_id, list_service.get, list_service.delete_lists)


@router.delete(
    "/lists",
    dependencies=[require_lists(True)],
    summary="Delete lists by id (?id=1&id=2) or by name (?query=...; all=true)",
)
async def delete_lists(
    request: Request, caller: Caller, id: Repeated = None, query: str = "", all: str = ""
) -> JSONResponse:
    """listmonk's bulk delete: the ids given, else the lists whose name contains `query`
    (every list with `all=true` and no query); only among the lists the caller manages."""
    ids = query_ids(id or [], "id")
    everything = parse_bool(all, "all")
    if not ids and not query.strip() and not everything:
        raise bad_request("id: give list ids, or a query (all=true for every list)")
    within = manageable(caller)
    if within is not None and ids and not set(ids) <= within:
        raise permission_denied("lists:manage_all")

    def work(session: Session) -> bool:
        if ids:
            list_service.delete_lists(session, ids)
        else:
            list_service.delete_matching(session, query, within)
        return True

    return data(await run_db(request, work, write=True))
