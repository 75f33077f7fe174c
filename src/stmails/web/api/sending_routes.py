"""The sending side's routers, mounted by `create_app` with one call (`install`)."""

from __future__ import annotations

from fastapi import FastAPI

from stmails.web.api import campaign_actions, suppressions, templates, tx
from stmails.web.api.sending_common import close_pool

# Request-body caps these routes need beyond the default.
BODY_LIMITS = {
    "/api/suppressions": suppressions.MAX_BODY_BYTES,
    "/api/tx": tx.MAX_BODY_BYTES,
}


def install(app: FastAPI) -> None:
    """Mounts the API routers under /api (the unsubscribe pages are web.public's)."""
    for router in (suppressions.router, templates.router, tx.router, campaign_actions.router):
        app.include_router(router, prefix="/api")


def shutdown(state: object) -> None:
    """Releases what the sending routes hold (the shared SMTP pool)."""
    close_pool(state)
