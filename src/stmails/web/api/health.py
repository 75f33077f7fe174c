"""`GET /health`: 200 when the database answers, 503 otherwise. No authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stmails.web.deps import app_state
from stmails.web.errors import is_database_unavailable, unavailable

router = APIRouter(tags=["health"])

_HEALTHY = b'{"data":true}'


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@router.get("/health", summary="Is the server up and its database reachable?")
async def health(request: Request) -> Response:
    """`{"data": true}` when a `SELECT 1` succeeds; 503 with Retry-After when it does not."""
    try:
        await run_in_threadpool(_ping, app_state(request).engine)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise unavailable("the database is unreachable") from exc
        raise
    return Response(_HEALTHY, media_type="application/json")
