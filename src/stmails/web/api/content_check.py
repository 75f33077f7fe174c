"""`POST /api/campaigns/{id}/content-check`: the content risk report of a campaign.

The campaign is rendered for a sample subscriber through the preview path and checked by
`services.content_check`; the answer is `{"data": {"score", "level", "summary", "findings"}}`
with every message in English and Chinese. A body may carry unsaved content to check instead
of the stored one (`subject`, `body`, `altbody`, `content_type`, `template_id`); nothing is
written.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import CONTENT_TYPES, Campaign
from stmails.services.content_check import check_campaign
from stmails.web.api.sending_common import sending_config
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.list_scope import guard
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["campaigns"], dependencies=[Depends(require_user), guard])

# Campaign fields a check may try without saving them.
TEXT_OVERRIDES = ("subject", "body", "altbody", "content_type")


def _overrides(body: dict[str, Any]) -> dict[str, Any]:
    """The unsaved content in a request body, type-checked (400 naming a bad field)."""
    overrides: dict[str, Any] = {}
    for name in TEXT_OVERRIDES:
        value = text_field(body, name, 5_000_000)
        if value is not None:
            overrides[name] = value
    if overrides.get("content_type", CONTENT_TYPES[0]) not in CONTENT_TYPES:
        raise bad_request(f"content_type: must be one of {', '.join(CONTENT_TYPES)}")
    template_id = body.get("template_id")
    if template_id is not None:
        if isinstance(template_id, bool) or not isinstance(template_id, int):
            raise bad_request("template_id: must be a template id")
        overrides["template_id"] = template_id or None
    return overrides


@router.post(
    "/campaigns/{campaign_id}/content-check",
    dependencies=[require_permission("campaigns:get_all")],
    summary="Check a campaign's content for spam risks",
    openapi_extra=JSON_BODY,
)
async def content_check(request: Request, campaign_id: int) -> JSONResponse:
    overrides = _overrides(await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise not_found("campaign")
        config = sending_config(request, session)
        return check_campaign(session, campaign, config, overrides).to_dict()

    return data(await run_db(request, work))
