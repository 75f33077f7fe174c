"""listmonk's server information routes: `GET /api/config` and `GET /api/about`.

- `GET /api/config` (any authenticated caller, as in listmonk): what a client needs to know of
  the server: its root URL, default From address, public sign-up page and captcha, privacy
  switches, media provider, messengers, languages, the permissions a role may grant, version.
- `GET /api/about` (`settings:get`; listmonk asks only a login, but it shows the host): the
  version and the system the server runs on. As in listmonk, the body is the object itself,
  without the `{"data": ...}` envelope.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import sys
from typing import Any

from fastapi import APIRouter, Depends, Request

import stmails
from stmails.db.dialect import database_info
from stmails.db.handles import Session
from stmails.services import settings as settings_service
from stmails.services.roles import PERMISSION_GROUPS
from stmails.services.sending.routing import DEFAULT_MESSENGER, messengers
from stmails.web.api.sending_common import sending_config
from stmails.web.body import run_db
from stmails.web.deps import require_user
from stmails.web.i18n import DEFAULT_LOCALE, LANGUAGE_NAMES, LOCALES
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["settings"], dependencies=[Depends(require_user)])


@router.get("/config", summary="The server's configuration a client needs")
async def get_config(request: Request) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        values = settings_service.get_all(session)
        sending = sending_config(request, session)
        captcha = (values.get("security.captcha") or {}).get("altcha") or {}
        return {
            "root_url": sending.root_url,
            "from_email": sending.from_email,
            "public_subscription": {
                "enabled": bool(values.get("app.enable_public_subscription_page")),
                "captcha_enabled": bool(captcha.get("enabled")),
                "captcha_provider": "altcha" if captcha.get("enabled") else None,
                "captcha_key": None,
                "altcha_complexity": int(captcha.get("complexity") or 0),
                "redirect_urls": [],
            },
            "privacy": {
                "disable_tracking": bool(values.get("privacy.disable_tracking")),
                "individual_tracking": bool(values.get("privacy.individual_tracking")),
            },
            "media_provider": values.get("upload.provider", "filesystem"),
            "messengers": messengers(sending.smtp) or [DEFAULT_MESSENGER],
            "langs": [{"code": code, "name": LANGUAGE_NAMES.get(code, code)} for code in LOCALES],
            "lang": DEFAULT_LOCALE,
            "permissions": [
                {"group": group, "permissions": list(names)}
                for group, names in PERMISSION_GROUPS.items()
            ],
            "update": None,
            "needs_restart": False,
            "has_legacy_user": False,
            "version": stmails.__version__,
        }

    return data(await run_db(request, work))


@router.get(
    "/about",
    dependencies=[require_permission("settings:get")],
    summary="Version and system information (listmonk's bare object)",
)
async def get_about(request: Request) -> JSONResponse:
    database = await run_db(request, _database)
    # ru_maxrss is kilobytes on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return JSONResponse(
        {
            "version": stmails.__version__,
            "build": "",
            "python_version": platform.python_version(),
            "database": database,
            "system": {"num_cpu": os.cpu_count() or 0, "memory_peak_mb": peak_mb},
            "host": {
                "os": sys.platform,
                "arch": platform.machine(),
                "hostname": socket.gethostname(),
            },
        }
    )


def _database(session: Session) -> dict[str, Any]:
    """The database's kind, version and size in MB."""
    dialect, version, size = database_info(session)
    return {"type": dialect, "version": version, "size_mb": round(size / 2**20)}
