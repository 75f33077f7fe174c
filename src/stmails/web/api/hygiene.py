"""List hygiene: the sunset policy's transitions and dry run, undo, and the scheduler's runs.

- `GET /api/hygiene/transitions?subscriber_id=&to_state=&page=&per_page=`: every recorded
  transition (`hygiene:get`), the newest first, with its reason and action.
- `POST /api/hygiene/transitions/{id}/undo`: undoes one (`hygiene:manage`): the state goes
  back, a sunset's unsubscription or suppression is reversed; the undo is recorded too.
- `GET /api/hygiene/sunset/preview`: the dry run (`hygiene:get`): who would move and why, with
  the settings as stored, enabled or not; nothing is written.
- `GET /api/hygiene/scheduler`: each periodic job's last run and the lease's holder.
- `GET /api/campaigns/{id}/segment`, `PUT /api/campaigns/{id}/segment`: the campaign's segment
  (`{"risk_levels": [...], "engagement_levels": [...], "verify_results": [...]}`; empty lists
  allow everything; `campaigns:get_all` / `campaigns:manage_all`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import HYGIENE_STATES, Campaign, HygieneTransition
from stmails.services.errors import NotFound
from stmails.services.hygiene import lease, segments, sunset
from stmails.web.body import json_object, run_db
from stmails.web.deps import Principal, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, ListingParams, data, timestamp

router = APIRouter(tags=["hygiene"], dependencies=[Depends(require_user)])
Caller = Annotated[Principal, Depends(require_user)]
JSON_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}


def transition_view(row: HygieneTransition) -> dict[str, Any]:
    """A transition as the API shows it."""
    return {
        "id": row.id,
        "subscriber_id": row.subscriber_id,
        "email": row.email,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "reason": row.reason,
        "action": row.action,
        "actor": row.actor,
        "meta": dict(row.meta or {}),
        "created_at": timestamp(row.created_at),
        "undone_at": timestamp(row.undone_at) if row.undone_at else None,
    }


@router.get(
    "/hygiene/transitions",
    dependencies=[require_permission("hygiene:get")],
    summary="Sunset-policy transitions",
)
async def list_transitions(
    request: Request,
    listing: ListingParams,
    subscriber_id: int | None = None,
    to_state: str = "",
) -> JSONResponse:
    if to_state and to_state not in HYGIENE_STATES:
        raise bad_request(f"to_state: one of {', '.join(HYGIENE_STATES)}")
    paging = listing.paging

    def work(session: Session) -> dict[str, Any]:
        rows, total = sunset.transitions(
            session,
            subscriber_id=subscriber_id,
            to_state=to_state,
            page=paging.page,
            per_page=paging.per_page or 1000,
        )
        return paging.envelope([transition_view(r) for r in rows], total)

    return data(await run_db(request, work))


@router.post(
    "/hygiene/transitions/{transition_id}/undo",
    dependencies=[require_permission("hygiene:manage")],
    summary="Undo a transition",
)
async def undo_transition(request: Request, caller: Caller, transition_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        back = sunset.undo(session, transition_id, actor=caller.username)
        session.flush()
        return transition_view(back)

    # Answered only after the commit (run_db commits before returning).
    return data(await run_db(request, work, write=True))


@router.get(
    "/hygiene/sunset/preview",
    dependencies=[require_permission("hygiene:get")],
    summary="Sunset policy dry run",
)
async def sunset_preview(request: Request) -> JSONResponse:
    return data(await run_db(request, lambda session: sunset.preview(session)))


@router.get(
    "/hygiene/scheduler",
    dependencies=[require_permission("hygiene:get")],
    summary="The scheduler's last runs",
)
async def scheduler_runs(request: Request) -> JSONResponse:
    return data(await run_db(request, lambda session: lease.last_runs(session)))


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


@router.get(
    "/campaigns/{campaign_id}/segment",
    dependencies=[require_permission("campaigns:get_all")],
    summary="A campaign's segment",
)
async def get_campaign_segment(request: Request, campaign_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        _campaign(session, campaign_id)
        return segments.get_segment(session, campaign_id).to_dict()

    return data(await run_db(request, work))


@router.put(
    "/campaigns/{campaign_id}/segment",
    dependencies=[require_permission("campaigns:manage_all")],
    summary="Set a campaign's segment",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
async def put_campaign_segment(request: Request, campaign_id: int) -> JSONResponse:
    segment = segments.parse_segment(await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        campaign = _campaign(session, campaign_id)
        if campaign.status in ("running", "finished", "cancelled"):
            raise bad_request(f"the segment of a {campaign.status} campaign cannot change")
        return segments.set_segment(session, campaign_id, segment).to_dict()

    return data(await run_db(request, work, write=True))
