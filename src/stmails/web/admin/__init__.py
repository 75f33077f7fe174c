"""The admin UI: server-rendered pages under /admin (see docs/ui.md).

`router` carries every admin page; its dependency `csrf_protect` checks every unsafe request
(Origin and CSRF token) before any page handler runs.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from stmails.web.admin import (
    auth,
    bounces,
    campaigns,
    home,
    lists,
    logs,
    profile,
    settings,
    subscriber_import,
    subscribers,
    suppression,
    templates,
    users,
    verification,
)
from stmails.web.admin.pages import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)])
for _section in (
    home.router,
    auth.router,
    profile.router,
    # Before subscribers: /admin/subscribers/import is not a subscriber id.
    subscriber_import.router,
    subscribers.router,
    lists.router,
    verification.router,
    bounces.router,
    suppression.router,
    logs.router,
    users.router,
    campaigns.router,
    templates.router,
    settings.router,
):
    router.include_router(_section)
