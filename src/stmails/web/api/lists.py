"""listmonk's list API: `/api/lists`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.db.models import MailingList
from stmails.services import list_admin
from stmails.web import serialize
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import not_found
from stmails.web.responses import JSONResponse, Repeated, data, parse_order, parse_page

router = APIRouter(tags=["lists"], dependencies=[Depends(require_user)])


def _get(session: Session, list_id: int) -> MailingList:
    found = session.get(MailingList, list_id)
    if found is None:
        raise not_found("list")
    return found


def _one(session: Session, item: MailingList) -> dict[str, Any]:
    return serialize.mailing_list(item, list_admin.subscriber_counts(session, [item.id])[item.id])


@router.get("/lists", summary="List mailing lists")
async def list_lists(
    request: Request,
    query: str = "",
    status: Repeated = None,
    tag: Repeated = None,
    tags: Repeated = None,
    order_by: str = "id",
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> JSONResponse:
    """listmonk's `GET /api/lists`: name search, type (`status`) and tag filters, pagination."""
    paging = parse_page(page, per_page)
    direction = parse_order(order)

    def work(session: Session) -> dict[str, Any]:
        rows, total = list_admin.search(
            session,
            query,
            status or [],
            (tag or []) + (tags or []),
            order_by,
            direction,
            paging.offset,
            paging.limit,
        )
        counts = list_admin.subscriber_counts(session, [r.id for r in rows])
        results = [serialize.mailing_list(r, counts[r.id]) for r in rows]
        return paging.envelope(results, total, query)

    return data(await run_db(request, work))


@router.get("/lists/{list_id}", summary="Get one list")
async def get_list(request: Request, list_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, _get(s, list_id))))


@router.post("/lists", summary="Create a list", openapi_extra=JSON_BODY)
async def create_list(request: Request) -> JSONResponse:
    body = await json_object(request)
    return data(await run_db(request, lambda s: _one(s, list_admin.create(s, body)), write=True))


@router.put("/lists/{list_id}", summary="Update a list", openapi_extra=JSON_BODY)
async def update_list(request: Request, list_id: int) -> JSONResponse:
    body = await json_object(request)

    def work(session: Session) -> dict[str, Any]:
        return _one(session, list_admin.update(session, _get(session, list_id), body))

    return data(await run_db(request, work, write=True))


@router.delete("/lists/{list_id}", summary="Delete a list")
async def delete_list(request: Request, list_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        _get(session, list_id)
        list_admin.delete_list(session, list_id)
        return True

    return data(await run_db(request, work, write=True))
