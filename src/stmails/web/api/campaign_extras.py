"""listmonk's campaign routes beside the records: previews of unsaved content, format
conversion, the progress of running campaigns, and bulk deletes.

- `POST /api/campaigns/{id}/preview` (and listmonk's `POST .../text`): the campaign rendered for
  a sample subscriber with the `body`, `content_type` and `template_id` of the request instead
  of the saved ones (nothing is saved). It renders text that is not saved, so it needs
  `campaigns:manage_all` besides `campaigns:get_all` (listmonk asks only the latter).
- `POST /api/campaigns/{id}/content` `{"body", "from", "to"}`: the body converted between content
  types (services.content_formats); `{"data": "<converted body>"}`. The id is not read (listmonk's
  editor sends 1 for campaigns not yet saved).
- `GET /api/campaigns/running/stats`: listmonk's progress of every running campaign.
- `DELETE /api/campaigns?id=1&id=2`, or `?query=...` (name or subject; `all=true` with no
  query deletes every campaign).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from stmails.db.handles import Session
from stmails.db.models import CONTENT_TYPES, Campaign
from stmails.services import campaign_records as campaign_service
from stmails.services.content_formats import convert
from stmails.services.sending.campaigns import preview
from stmails.web.api.campaigns import READ, WRITE
from stmails.web.api.sending_common import sending_config
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, query_ids, run_db, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.list_scope import campaign_lists, guard
from stmails.web.permissions import Caller
from stmails.web.responses import JSONResponse, Repeated, data, parse_bool, timestamp

router = APIRouter(tags=["campaigns"], dependencies=[Depends(require_user), guard])

# A body converted or previewed is at most this long (the request cap bounds it anyway).
MAX_BODY_CHARS = 5_000_000


@router.get(
    "/campaigns/running/stats", dependencies=[READ], summary="Progress of the running campaigns"
)
async def running_stats(request: Request, caller: Caller) -> JSONResponse:
    """`[{"id", "status", "to_send", "sent", "started_at", "updated_at", "rate", "net_rate"}]`
    of the running campaigns: `rate` is messages sent in the last minute, `net_rate` messages
    a minute since the start."""

    within = campaign_lists(caller, False)

    def work(session: Session) -> list[dict[str, Any]]:
        stats = campaign_service.running_stats(session, within=within)
        for item in stats:
            item["started_at"] = timestamp(item["started_at"])
            item["updated_at"] = timestamp(item["updated_at"])
        return stats

    return data(await run_db(request, work))


@router.delete(
    "/campaigns",
    dependencies=[WRITE],
    summary="Delete campaigns by id (?id=1&id=2) or by name (?query=...; all=true)",
)
async def delete_campaigns(
    request: Request, caller: Caller, id: Repeated = None, query: str = "", all: str = ""
) -> JSONResponse:
    """listmonk's bulk delete; a caller limited to its lists' campaigns deletes only those
    (listmonk: the others named are left)."""
    ids = query_ids(id or [], "id")
    everything = parse_bool(all, "all")
    if not ids and not query.strip() and not everything:
        raise bad_request("id: give campaign ids, or a query (all=true for every campaign)")
    within = campaign_lists(caller, True)

    def work(session: Session) -> bool:
        if ids:
            campaign_service.delete_campaigns(session, ids, within)
        else:
            campaign_service.delete_matching(session, query, within)
        return True

    return data(await run_db(request, work, write=True))


async def _preview_unsaved(request: Request, campaign_id: int) -> Response:
    body = await json_object(request)
    text = text_field(body, "body", MAX_BODY_CHARS)
    content_type = text_field(body, "content_type", 20)
    template_id = body.get("template_id")
    if template_id is not None and (
        isinstance(template_id, bool) or not isinstance(template_id, int)
    ):
        raise bad_request("template_id: must be a template id")

    def work(session: Session) -> tuple[str, str]:
        campaign = campaign_service.get(session, campaign_id)
        # The unsaved content is tried on a detached copy, never written.
        session.expunge(campaign)
        _override(campaign, text, content_type, template_id)
        return preview(session, campaign, None, sending_config(request, session))

    media_type, rendered = await run_db(request, work)
    # The preview is the campaign's own HTML: sandboxed so its scripts cannot act on the API.
    return Response(
        rendered,
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"},
    )


def _override(
    campaign: Campaign, body: str | None, content_type: str | None, template_id: int | None
) -> None:
    if body is not None:
        campaign.body = body
    if content_type:
        if content_type not in CONTENT_TYPES:
            raise bad_request(f"content_type: one of {', '.join(CONTENT_TYPES)}")
        campaign.content_type = content_type
    # listmonk: a template id below 1 keeps the campaign's own template.
    if template_id is not None and template_id > 0:
        campaign.template_id = template_id


@router.post(
    "/campaigns/{campaign_id}/preview",
    dependencies=[READ, WRITE],
    summary="Preview unsaved content of a campaign",
    openapi_extra=JSON_BODY,
)
@router.post(
    "/campaigns/{campaign_id}/text",
    dependencies=[READ, WRITE],
    summary="Preview unsaved content of a campaign (listmonk's alias)",
    openapi_extra=JSON_BODY,
)
async def post_preview(request: Request, campaign_id: int) -> Response:
    return await _preview_unsaved(request, campaign_id)


@router.post(
    "/campaigns/{campaign_id}/content",
    dependencies=[WRITE],
    summary="Convert a body between content types",
    openapi_extra=JSON_BODY,
)
async def post_content(request: Request, campaign_id: int) -> JSONResponse:
    """listmonk's `{"body", "from", "to"}`; the campaign id is not read."""
    del campaign_id
    body = await json_object(request)
    text = text_field(body, "body", MAX_BODY_CHARS) or ""
    source = text_field(body, "from", 20) or ""
    target = text_field(body, "to", 20) or ""
    return data(await run_in_threadpool(convert, text, source, target))
