"""Health checks for load balancers and orchestrators; none but `/api/health` needs authentication.

- `GET /health` (listmonk's): 200 when the database answers, 503 otherwise.
- `GET /health/live`: 200 as long as the process answers requests at all (its event loop runs);
  it touches nothing else, so a busy or unreachable database never gets the process restarted.
- `GET /health/ready`: 200 when this process can do its work: the database answers, its schema
  is at the newest migration this code knows, and every background loop of the process (the
  bounce and tracking writers, the mailbox scanner, the analytics folder, the campaign sender
  when it runs here) is alive; else 503 with the failing checks named. A change of readiness is
  logged once, with the failing checks.

`GET /api/health` is listmonk's authenticated twin of `/health`: the same answer for any caller
with valid credentials (listmonk's clients call it to check their login), 401/403 otherwise.
"""

from __future__ import annotations

import functools
import logging

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails import liveness
from stmails.db.handles import Session, SQLAlchemyError, sessionmaker
from stmails.db.health import ping, stored_revisions
from stmails.db.migrate import head_revision
from stmails.web.deps import AppState, app_state, require_user
from stmails.web.errors import RETRY_AFTER_SECONDS, is_database_unavailable, unavailable
from stmails.web.hot_paths import json_headers, send_json

log = logging.getLogger("stmails.web.health")
# Where the last readiness answer is kept (in AppState.extras), so that changes are logged once.
_READY_KEY = "health.ready"

router = APIRouter(tags=["health"])

_HEALTHY = b'{"data":true}'


def _ping(sessions: sessionmaker[Session]) -> None:
    # A read-only session: on SQLite it begins with a plain BEGIN, so a health check never
    # queues for the write lock behind the bounce writer (or holds it up).
    with sessions() as session:
        ping(session)


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


@router.get("/health/live", summary="Is the process answering? (liveness)")
async def live() -> Response:
    """`{"data": true}` whenever the process answers; it checks nothing else."""
    return Response(_HEALTHY, media_type="application/json")


@functools.cache
def _head() -> str | None:
    # The migration scripts do not change while the process runs.
    return head_revision()


def _database_checks(sessions: sessionmaker[Session]) -> dict[str, bool]:
    """`database`: a `SELECT 1` succeeds; `migrations`: the database is at the newest revision
    of this code's migration scripts."""
    try:
        with sessions() as session:
            ping(session)
            try:
                revisions = stored_revisions(session)
            except SQLAlchemyError as exc:
                log.debug("readiness: no migration revision: %s", exc)
                revisions = []
    except SQLAlchemyError as exc:
        log.debug("readiness: database unreachable: %s", exc)
        return {"database": False, "migrations": False}
    return {"database": True, "migrations": list(revisions) == [_head()]}


def readiness(state: AppState) -> dict[str, bool]:
    """The checks of `GET /health/ready` that need no database: each background loop of the
    application and of the process (see `stmails.liveness`), alive or not."""
    loops = {**liveness.checks(), **state.background}
    return {name: bool(check()) for name, check in sorted(loops.items())}


@router.get(
    "/health/ready",
    summary="Can this process do its work? (readiness)",
    responses={503: {"description": "Not ready; `checks` names what failed"}},
)
async def ready(request: Request) -> Response:
    """`{"data": {"ready": true, "checks": {...}}}` with each check's result; 503 (with
    Retry-After) when any of them failed."""
    state = app_state(request)
    checks = await run_in_threadpool(_database_checks, state.readonly_sessions)
    checks.update(readiness(state))
    is_ready = all(checks.values())
    if state.extras.get(_READY_KEY) != is_ready:
        state.extras[_READY_KEY] = is_ready
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        if is_ready:
            log.info("ready: every check passes")
        else:
            log.warning("not ready: %s failed", failing)
    body = orjson.dumps({"data": {"ready": is_ready, "checks": checks}})
    if is_ready:
        return Response(body, media_type="application/json")
    return Response(
        body,
        status_code=503,
        media_type="application/json",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
