"""listmonk's list API: `/api/lists`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.db.models import LIST_TYPES, MailingList
from stmails.services import lists as list_service
from stmails.web import serialize
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import act_on_one, json_object, run_db, strings_field, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, ListingParams, Repeated, data

router = APIRouter(tags=["lists"], dependencies=[Depends(require_user)])


def _one(session: Session, item: MailingList) -> dict[str, Any]:
    return serialize.mailing_list(item, list_service.counts(session, [item.id])[item.id].total)


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    """The list fields present in a listmonk body, type-checked."""
    fields: dict[str, Any] = {}
    for name in ("name", "type", "optin", "description"):
        if name in body:
            value = text_field(body, name, 10_000)
            if value is not None:
                fields[name] = value
    if "tags" in body:
        fields["tags"] = strings_field(body, "tags") or []
    return fields


@router.get(
    "/lists", dependencies=[require_permission("lists:get_all")], summary="List mailing lists"
)
async def list_lists(
    request: Request,
    listing: ListingParams,
    query: str = "",
    status: Repeated = None,
    tag: Repeated = None,
    tags: Repeated = None,
) -> JSONResponse:
    """listmonk's `GET /api/lists`: name search, type (`status`) and tag filters, pagination."""
    paging = listing.paging
    order_by = listing.order_by or "id"
    direction = listing.order or "asc"
    types = status or []
    if len(types) > 1 or any(t not in LIST_TYPES for t in types):
        raise bad_request(f"status: one of {', '.join(LIST_TYPES)}")
    wanted_tags = (tag or []) + (tags or [])

    def work(session: Session) -> dict[str, Any]:
        found = list_service.list_lists(
            session,
            search=query,
            tags=wanted_tags,
            list_type=types[0] if types else None,
            order_by=order_by,
            order=direction,
            page=paging.page,
            per_page=paging.per_page,
        )
        counts = list_service.counts(session, [r.id for r in found.results])
        results = [serialize.mailing_list(r, counts[r.id].total) for r in found.results]
        return paging.envelope(results, found.total, query)

    return data(await run_db(request, work))


@router.get(
    "/lists/{list_id}", dependencies=[require_permission("lists:get_all")], summary="Get one list"
)
async def get_list(request: Request, list_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, list_service.get(s, list_id))))


@router.post(
    "/lists",
    dependencies=[require_permission("lists:manage_all")],
    summary="Create a list",
    openapi_extra=JSON_BODY,
)
async def create_list(request: Request) -> JSONResponse:
    """listmonk's `POST /api/lists`: name, type, optin, tags (and stmails' description)."""
    fields = _fields(await json_object(request))
    if not fields.get("name"):
        raise bad_request("name: required")

    def work(session: Session) -> dict[str, Any]:
        return _one(session, list_service.create(session, **fields))

    return data(await run_db(request, work, write=True))


@router.put(
    "/lists/{list_id}",
    dependencies=[require_permission("lists:manage_all")],
    summary="Update a list",
    openapi_extra=JSON_BODY,
)
async def update_list(request: Request, list_id: int) -> JSONResponse:
    """Changes the fields present (listmonk's PUT takes any subset)."""
    fields = _fields(await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        found = list_service.get(session, list_id)
        return _one(session, list_service.update_list(session, found, **fields))

    return data(await run_db(request, work, write=True))


@router.delete(
    "/lists/{list_id}",
    dependencies=[require_permission("lists:manage_all")],
    summary="Delete a list",
)
async def delete_list(request: Request, list_id: int) -> JSONResponse:
    return await act_on_one(request, list_id, list_service.get, list_service.delete_lists)
