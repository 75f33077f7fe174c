"""listmonk's campaign API: `/api/campaigns` (records only; sending comes with the sender)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.db.models import Campaign
from stmails.services import campaign_admin
from stmails.web import serialize
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import not_found
from stmails.web.responses import JSONResponse, Repeated, data, parse_order, parse_page

router = APIRouter(tags=["campaigns"], dependencies=[Depends(require_user)])


def _get(session: Session, campaign_id: int) -> Campaign:
    found = session.get(Campaign, campaign_id)
    if found is None:
        raise not_found("campaign")
    return found


def _one(session: Session, item: Campaign) -> dict[str, Any]:
    return serialize.campaign(item, campaign_admin.lists_of(session, [item.id])[item.id])


@router.get("/campaigns", summary="List campaigns")
async def list_campaigns(
    request: Request,
    query: str = "",
    status: Repeated = None,
    order_by: str = "created_at",
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> JSONResponse:
    paging = parse_page(page, per_page)
    direction = parse_order(order, default="desc")

    def work(session: Session) -> dict[str, Any]:
        rows, total = campaign_admin.search(
            session, query, status or [], order_by, direction, paging.offset, paging.limit
        )
        lists = campaign_admin.lists_of(session, [r.id for r in rows])
        return paging.envelope([serialize.campaign(r, lists[r.id]) for r in rows], total, query)

    return data(await run_db(request, work))


@router.get("/campaigns/{campaign_id}", summary="Get one campaign")
async def get_campaign(request: Request, campaign_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, _get(s, campaign_id))))


@router.post("/campaigns", summary="Create a campaign (draft)", openapi_extra=JSON_BODY)
async def create_campaign(request: Request) -> JSONResponse:
    body = await json_object(request)
    return data(
        await run_db(request, lambda s: _one(s, campaign_admin.create(s, body)), write=True)
    )


@router.put("/campaigns/{campaign_id}", summary="Update a campaign", openapi_extra=JSON_BODY)
async def update_campaign(request: Request, campaign_id: int) -> JSONResponse:
    body = await json_object(request)

    def work(session: Session) -> dict[str, Any]:
        return _one(session, campaign_admin.update(session, _get(session, campaign_id), body))

    return data(await run_db(request, work, write=True))


@router.delete("/campaigns/{campaign_id}", summary="Delete a campaign")
async def delete_campaign(request: Request, campaign_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        _get(session, campaign_id)
        campaign_admin.delete_campaign(session, campaign_id)
        return True

    return data(await run_db(request, work, write=True))
