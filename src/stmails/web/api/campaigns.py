"""listmonk's campaign API: `/api/campaigns` records. Status changes, test sends and previews
live in `campaign_actions.py`, beside the sender they drive; unsaved previews, format
conversion, running stats and bulk deletes in `campaign_extras.py`.

Create and update take every field listmonk's do: the content fields, `lists`, `tags`,
`headers`, `attribs`, `body_source`, `media` (media library ids; the files the campaign
carries), `template_id` (the default campaign template when absent) and the archive fields
(`archive`, `archive_slug`, `archive_template_id`, `archive_meta`), checked as
`PUT /api/campaigns/{id}/archive` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import Campaign
from stmails.services import archive
from stmails.services import campaign_records as campaign_service
from stmails.services import settings as settings_service
from stmails.services.analytics.listmonk import engagement_of_campaigns
from stmails.services.sending.routing import check_messenger
from stmails.web import serialize
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import (
    act_on_one,
    bool_field,
    ids_field,
    json_object,
    object_field,
    run_db,
    text_field,
)
from stmails.web.deps import Principal, require_user
from stmails.web.errors import bad_request
from stmails.web.list_scope import campaign_lists, check_lists, guard
from stmails.web.permissions import Caller, require_any
from stmails.web.responses import JSONResponse, ListingParams, Repeated, data

router = APIRouter(tags=["campaigns"], dependencies=[Depends(require_user), guard])

# listmonk's pairs: every campaign, or (with the narrow one) the campaigns of the caller's lists.
READ = require_any("campaigns:get_all", "campaigns:get")
WRITE = require_any("campaigns:manage_all", "campaigns:manage")


def serialized(session: Session, items: Sequence[Campaign]) -> list[dict[str, Any]]:
    """`items` as the API returns them, with their lists, bounce counts, views and clicks."""
    ids = [item.id for item in items]
    links = campaign_service.campaign_lists(session, ids)
    bounces = campaign_service.bounce_counts(session, ids)
    engagement = engagement_of_campaigns(session, ids)
    media = campaign_service.campaign_media(session, ids)
    return [
        serialize.campaign(
            item, links[item.id], bounces[item.id], engagement[item.id], media[item.id]
        )
        for item in items
    ]


def _one(session: Session, item: Campaign) -> dict[str, Any]:
    return serialized(session, [item])[0]


def archive_fields(body: dict[str, Any]) -> dict[str, Any]:
    """listmonk's archive fields present in `body`, type-checked, as keyword arguments of
    services.archive.set_archive (empty when the body has none)."""
    if not any(name in body for name in ARCHIVE_FIELDS):
        return {}
    template_id = body.get("archive_template_id")
    if template_id is not None and (
        isinstance(template_id, bool) or not isinstance(template_id, int)
    ):
        raise bad_request("archive_template_id: must be a template id or null")
    return {
        "archive": bool_field(body, "archive") if "archive" in body else None,
        "slug": text_field(body, "archive_slug", 300),
        "template_id": template_id or None,
        "meta": object_field(body, "archive_meta"),
        "clear_template": "archive_template_id" in body and not template_id,
    }


def _check_messenger(session: Session, fields: dict[str, Any]) -> None:
    """400 naming `messenger` unless it is `email` or a named server of the `smtp` setting."""
    messenger = fields.get("messenger")
    if messenger is None:
        return
    if not isinstance(messenger, str):
        raise bad_request("messenger: expected a messenger's name, like email")
    smtp = settings_service.get_all(session).get("smtp") or []
    check_messenger(smtp if isinstance(smtp, list) else [], messenger, "messenger")


ARCHIVE_FIELDS = ("archive", "archive_slug", "archive_template_id", "archive_meta")


def check_campaign_lists(caller: Principal, list_ids: list[int] | None) -> None:
    """403 when the caller sends a campaign to a list that is not its own (web.list_scope)."""
    check_lists(caller, list_ids or [], campaign_lists(caller, True), "list:get")


@router.get("/campaigns", dependencies=[READ], summary="List campaigns")
async def list_campaigns(
    request: Request,
    caller: Caller,
    listing: ListingParams,
    query: str = "",
    status: Repeated = None,
    tag: Repeated = None,
    tags: Repeated = None,
) -> JSONResponse:
    """listmonk's `GET /api/campaigns`: name/subject search, statuses, tags, pagination."""
    paging = listing.paging
    order_by = listing.order_by or "created_at"
    direction = listing.order or "desc"

    def work(session: Session) -> dict[str, Any]:
        found = campaign_service.list_campaigns(
            session,
            search=query,
            statuses=status or [],
            tags=(tag or []) + (tags or []),
            within=campaign_lists(caller, False),
            order_by=order_by,
            order=direction,
            page=paging.page,
            per_page=paging.per_page,
        )
        results = serialized(session, found.results)
        return paging.envelope(results, found.total, query)

    return data(await run_db(request, work))


@router.get("/campaigns/{campaign_id}", dependencies=[READ], summary="Get one campaign")
async def get_campaign(request: Request, campaign_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, campaign_service.get(s, campaign_id))))


@router.post(
    "/campaigns", dependencies=[WRITE], summary="Create a campaign (draft)", openapi_extra=JSON_BODY
)
async def create_campaign(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's `POST /api/campaigns`: name, subject, lists and the content fields."""
    body = await json_object(request)
    fields = campaign_service.body_fields(body)
    name = fields.pop("name", None)
    subject = fields.pop("subject", None)
    if not name:
        raise bad_request("name: required")
    if not subject:
        raise bad_request("subject: required")
    list_ids = ids_field(body, "lists") or []
    check_campaign_lists(caller, list_ids)
    media_ids = ids_field(body, "media") or []
    archiving = archive_fields(body)

    def work(session: Session) -> dict[str, Any]:
        _check_messenger(session, fields)
        created = campaign_service.create(
            session, name=name, subject=subject, list_ids=list_ids, media_ids=media_ids, **fields
        )
        if archiving:
            archive.set_archive(session, created, **archiving)
        return _one(session, created)

    return data(await run_db(request, work, write=True))


@router.put(
    "/campaigns/{campaign_id}",
    dependencies=[WRITE],
    summary="Update a campaign",
    openapi_extra=JSON_BODY,
)
async def update_campaign(request: Request, caller: Caller, campaign_id: int) -> JSONResponse:
    body = await json_object(request)
    fields = campaign_service.body_fields(body)
    list_ids = ids_field(body, "lists")
    check_campaign_lists(caller, list_ids)
    media_ids = ids_field(body, "media")
    archiving = archive_fields(body)

    def work(session: Session) -> dict[str, Any]:
        found = campaign_service.get(session, campaign_id)
        _check_messenger(session, fields)
        updated = campaign_service.update_campaign(
            session, found, list_ids=list_ids, media_ids=media_ids, **fields
        )
        if archiving:
            archive.set_archive(session, updated, **archiving)
        return _one(session, updated)

    return data(await run_db(request, work, write=True))


@router.delete("/campaigns/{campaign_id}", dependencies=[WRITE], summary="Delete a campaign")
async def delete_campaign(request: Request, campaign_id: int) -> JSONResponse:
    return await act_on_one(
        request, campaign_id, campaign_service.get, campaign_service.delete_campaigns
    )
