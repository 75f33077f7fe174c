"""`GET /health`: 200 when the database answers, 503 otherwise. No authentication.

`GET /api/health` is listmonk's authenticated twin: the same answer for any caller with valid
credentials (listmonk's clients call it to check their login), 401/403 otherwise.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.web.deps import AppState, app_state, require_user
from stmails.web.errors import is_database_unavailable, unavailable
from stmails.web.hot_paths import json_headers, send_json

router = APIRouter(tags=["health"])

_HEALTHY = b'{"data":true}'


def _ping(sessions: sessionmaker[Session]) -> None:
    # A read-only session: on SQLite it begins with a plain BEGIN, so a health check never
    # queues for the write lock behind the bounce writer (or holds it up).
    with sessions() as session:
        session.execute(text("SELECT 1"))


async def _check(state: AppState) -> None:
    try:
        await run_in_threadpool(_ping, state.readonly_sessions)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise unavailable("the database is unreachable") from exc
        raise


@router.get("/health", summary="Is the server up and its database reachable?")
async def health(request: Request) -> Response:
    """`{"data": true}` when a `SELECT 1` succeeds; 503 with Retry-After when it does not.

    This route documents `/health` in the OpenAPI schema; requests are answered by `Health`
    (the same answers, through the app's short stack for hot routes)."""
    await _check(app_state(request))
    return Response(_HEALTHY, media_type="application/json")


@router.get(
    "/api/health",
    dependencies=[Depends(require_user)],
    summary="Are these credentials valid (and the database reachable)?",
)
async def api_health(request: Request) -> Response:
    """listmonk's `GET /api/health`: `{"data": true}` for any authenticated caller."""
    await _check(app_state(request))
    return Response(_HEALTHY, media_type="application/json")


class Health:
    """`GET /health` as a plain ASGI endpoint: load balancers poll it, so it takes the short
    stack of the hot routes (web.hot_paths) instead of FastAPI's."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _check(scope["app"].state.stmails)
        await send_json(send, _HEALTHY, _HEADERS)


_HEADERS = json_headers(_HEALTHY)

route = Route("/health", Health(), methods=["GET"], name="health_hot")
