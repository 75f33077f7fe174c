"""The subscriber-facing pages (docs/public-pages.md): sign-up, double opt-in, preferences,
export and wipe, the archive. No login: links carry their capability (services.public)."""

from __future__ import annotations

from fastapi import APIRouter

from stmails.web.public import archive, manage, subscription

router = APIRouter()
# The catch-all /subscription/{key}/{subscriber} of `manage` comes after every fixed path.
for _section in (subscription.router, archive.router, manage.router):
    router.include_router(_section)
