"""listmonk's campaign actions: status changes, test sends, preview; plus per-campaign counters.

- `PUT /api/campaigns/{id}/status` `{"status": "scheduled"|"running"|"paused"|"cancelled"|"draft"}`
  under listmonk's rules; the sender (inside `stmails serve` / `stmails worker`) picks running
  campaigns up. Starting or scheduling answers with the campaign plus `content_warnings`, the
  content risk report (services.content_check), which warns and never blocks.
- `POST /api/campaigns/{id}/test` `{"subscribers": ["a@b.c", ...]}` (plus any campaign field to
  try unsaved content, which also needs `campaigns:manage_all`: it is writing the campaign
  without saving it): sent now, each address checked like campaign mail; a suppressed or
  unknown address is refused with its reason. listmonk's `{"data": true}` when all were sent
  (else 400/503 naming each; `?results=true` for the per-recipient results).
- `GET /api/campaigns/{id}/preview?subscriber_id=N` (or `subscriber_email=`): the body rendered
  for that subscriber (a sample subscriber when none is named); naming a subscriber also needs
  `subscribers:get`, since the preview shows that subscriber's data.
- `GET /api/campaigns/{id}/stats`: sent, skipped by reason, failed, bounces, complaints,
  unsubscribes, deferred, in-doubt and in-flight sends, and the send errors (how many, the
  latest, and why the sender paused the campaign).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from stmails.db.handles import Session
from stmails.db.models import Campaign, Subscriber
from stmails.services import subscribers
from stmails.services.content_check import check_campaign
from stmails.services.sending.campaigns import (
    campaign_stats,
    change_status,
    compile_campaign,
    preview,
)
from stmails.services.sending.compose import Links, unsubscribe_url
from stmails.services.sending.direct import resolve_subscribers
from stmails.services.sending.routing import servers_for
from stmails.web.api.campaigns import serialized
from stmails.web.api.sending_common import direct_sender, listmonk_answer, sending_config
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.list_scope import guard
from stmails.web.permissions import Caller, check_permission, require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["campaigns"], dependencies=[Depends(require_user), guard])

# Fields a test send may override without saving them.
TEST_OVERRIDES = ("subject", "body", "altbody", "content_type", "from_email", "template_id")


def _campaign(session: Session, campaign_id: int) -> Campaign:
    found = session.get(Campaign, campaign_id)
    if found is None:
        raise not_found("campaign")
    return found


@router.put(
    "/campaigns/{campaign_id}/status",
    dependencies=[require_permission("campaigns:send")],
    summary="Change a campaign's status",
    openapi_extra=JSON_BODY,
)
async def put_status(request: Request, campaign_id: int) -> JSONResponse:
    body = await json_object(request)
    status = body.get("status")
    if not isinstance(status, str) or not status:
        raise bad_request("status: required")

    def work(session: Session) -> dict[str, Any]:
        campaign = _campaign(session, campaign_id)
        config = sending_config(request, session)
        change_status(session, campaign, status, config)
        session.flush()
        result = serialized(session, [campaign])[0]
        if status in {"running", "scheduled"}:
            # A warning beside the started campaign, never a reason to refuse the start.
            result["content_warnings"] = check_campaign(session, campaign, config).to_dict()
        return result

    return data(await run_db(request, work, write=True))


@router.post(
    "/campaigns/{campaign_id}/test",
    dependencies=[require_permission("campaigns:send")],
    summary="Send a test to given addresses",
    openapi_extra=JSON_BODY,
)
async def test_send(request: Request, caller: Caller, campaign_id: int) -> JSONResponse:
    body = await json_object(request)
    if any(body.get(name) is not None for name in TEST_OVERRIDES):
        check_permission(caller, "campaigns:manage_all")
    emails = body.get("subscribers")
    if not isinstance(emails, list) or not emails or not all(isinstance(e, str) for e in emails):
        raise bad_request("subscribers: give a list of subscriber e-mail addresses")

    def work(session: Session) -> list[dict[str, Any]]:
        campaign = _campaign(session, campaign_id)
        # Unsaved changes are tried on a detached copy, never written.
        session.expunge(campaign)
        for name in TEST_OVERRIDES:
            if name in body and body[name] is not None:
                setattr(campaign, name, body[name])
        config = sending_config(request, session)
        content = compile_campaign(session, campaign, config)
        # Through the servers the campaign itself goes through (its messenger and From): a
        # messenger or From no enabled server takes is the caller's to mend (400).
        from_email = campaign.from_email or config.from_email
        if config.smtp and "{{" not in from_email:
            servers_for(config.smtp, campaign.messenger, from_email)
        sender = direct_sender(request, config, campaign.messenger)
        results = sender.send(
            session,
            content,
            resolve_subscribers(session, emails=emails),
            kind="test",
            campaign={"uuid": campaign.uuid, "name": campaign.name, "subject": campaign.subject},
            links_for=lambda r: Links(unsubscribe_url(config.root_url, campaign.uuid, r.uuid)),
        )
        return [r.as_dict() for r in results]

    results = await run_db(request, work, write=True)
    return listmonk_answer(request, results)


@router.get(
    "/campaigns/{campaign_id}/preview",
    dependencies=[require_permission("campaigns:get_all")],
    summary="Preview for a subscriber",
)
async def get_preview(request: Request, caller: Caller, campaign_id: int) -> Response:
    params = request.query_params
    subscriber_id = params.get("subscriber_id", "")
    email = params.get("subscriber_email", "")
    if subscriber_id or email:
        check_permission(caller, "subscribers:get")
    if subscriber_id and not subscriber_id.isdigit():
        raise bad_request("subscriber_id: expected a number")

    def work(session: Session) -> tuple[str, str]:
        campaign = _campaign(session, campaign_id)
        subscriber = None
        if subscriber_id:
            subscriber = session.get(Subscriber, int(subscriber_id))
        elif email:
            subscriber = subscribers.get_by_email(session, email)
        if (subscriber_id or email) and subscriber is None:
            raise not_found("subscriber")
        return preview(session, campaign, subscriber, sending_config(request, session))

    media_type, body = await run_db(request, work)
    # The preview is the campaign's own HTML: sandboxed so its scripts cannot act on the API.
    return Response(
        body,
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/campaigns/{campaign_id}/stats",
    dependencies=[require_permission("campaigns:get_analytics")],
    summary="Per-campaign sending counters",
)
async def get_stats(request: Request, campaign_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        campaign = _campaign(session, campaign_id)
        stats = campaign_stats(session, campaign_id)
        return {"id": campaign.id, "status": campaign.status, "to_send": campaign.to_send, **stats}

    return data(await run_db(request, work))
