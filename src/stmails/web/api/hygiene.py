"""List hygiene: the sunset policy's transitions and dry run, undo, and the scheduler's runs.

- `GET /api/hygiene/transitions?subscriber_id=&to_state=&page=&per_page=`: every recorded
  transition (`hygiene:get`), the newest first, with its reason and action.
- `POST /api/hygiene/transitions/{id}/undo`: undoes one (`hygiene:manage`): the state goes
  back, a sunset's unsubscription or suppression is reversed; the undo is recorded too.
- `GET /api/hygiene/sunset/preview`: the dry run (`hygiene:get`): who would move and why, with
  the settings as stored, enabled or not; nothing is written.
- `GET /api/hygiene/scheduler`: each periodic job's last run and the lease's holder.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.db.models import HYGIENE_STATES, HygieneTransition
from stmails.services.hygiene import lease, sunset
from stmails.web.body import run_db
from stmails.web.deps import Principal, require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, ListingParams, data, timestamp

router = APIRouter(tags=["hygiene"], dependencies=[Depends(require_user)])
Caller = Annotated[Principal, Depends(require_user)]


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
