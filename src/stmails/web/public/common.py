"""What the subscriber-facing pages share: the theme, rendering, link keys, the captcha.

Public pages have no session: a link's capability is in its URL (services.public.resolve_link)
and the sign-up form must accept posts from the sites that embed it, so these routes carry no
CSRF token. Posts that act on a subscriber (preferences, export, wipe, confirmation) are
refused when a browser says they come from another site (Origin, else Referer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from altcha import v1 as altcha_v1
from fastapi import Request
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.types import utcnow
from stmails.services import settings, webhook_nonces
from stmails.services.public_settings import css_is_safe
from stmails.web import i18n
from stmails.web.body import run_db
from stmails.web.browser import CsrfRefused, check_origin, client_address
from stmails.web.deps import app_state
from stmails.web.i18n import N_
from stmails.web.templating import render

log = logging.getLogger("stmails.public")

CAPTCHA_FIELD = "altcha"
CAPTCHA_LIFETIME = timedelta(minutes=10)
CAPTCHA_MAX_CHARS = 4000
HONEYPOT_FIELD = "nonce"


@dataclass(frozen=True)
class Theme:
    """How the admin dressed the public pages (listmonk's appearance settings)."""

    site_name: str
    logo: str
    css_version: str
    captcha: bool
    captcha_complexity: int


def load_theme(session: Session) -> Theme:
    """The theme from the settings."""
    css = settings.get_valid(session, "appearance.public.custom_css")
    logo = settings.get_valid(session, "app.logo_url")
    captcha = settings.get_valid(session, "security.captcha")["altcha"]
    return Theme(
        site_name=settings.get_valid(session, "app.site_name"),
        # A data: logo is served by /public/logo (the CSP allows images from us only).
        logo=(
            f"/public/logo?v={hashlib.sha256(logo.encode()).hexdigest()[:12]}"
            if logo.startswith("data:")
            else logo
        ),
        css_version=(
            hashlib.sha256(css.encode()).hexdigest()[:12] if css and css_is_safe(css) else ""
        ),
        captcha=bool(captcha["enabled"]),
        captcha_complexity=int(captcha["complexity"]),
    )


def locale_of(request: Request) -> str:
    """The language of a public page: `?lang=` when supported, else the browser's."""
    asked = request.query_params.get("lang")
    return i18n.negotiate(request.headers.get("accept-language"), asked)


async def render_public(
    request: Request,
    template: str,
    *,
    title: str,
    status_code: int = 200,
    theme: Theme | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A public page: `template` (under templates/public/) with the theme and language."""
    if theme is None:
        theme = await run_db(request, load_theme)
    locale = locale_of(request)
    shared = {
        "theme": theme,
        "locale": locale,
        "html_lang": locale.replace("_", "-"),
        "title": title,
    }
    response = render(
        f"public/{template}",
        {**shared, **context},
        locale=locale,
        status_code=status_code,
        headers={"X-Robots-Tag": "noindex", **(headers or {})},
    )
    return response


async def message_page(
    request: Request, title: str, message: str, status_code: int = 200, **extra: Any
) -> Response:
    """A page with one heading and one message (both already translated)."""
    return await render_public(
        request, "message.html", title=title, message=message, status_code=status_code, **extra
    )


INVALID_LINK = N_(
    "This link is not valid. It may be incomplete, or the subscription it belonged to no "
    "longer exists."
)


async def invalid_link(request: Request) -> Response:
    """The same answer for an unknown subscriber and a forged pair: it reveals nobody."""
    with i18n.use_locale(locale_of(request)):
        title, text = i18n.gettext("Link not valid"), i18n.gettext(INVALID_LINK)
    return await message_page(request, title, text, 404)


def link_secret(request: Request) -> bytes:
    """The key subscriber links are signed with, derived from the server's secret key."""
    secret = app_state(request).settings.resolved_secret_key()
    return hashlib.sha256(b"stmails-public-links\x00" + secret.encode()).digest()


def same_site(request: Request) -> bool:
    """False when the browser says the post comes from another site."""
    try:
        check_origin(request, app_state(request).settings.root_url)
    except CsrfRefused:
        return False
    return True


def client_ip(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For applied by uvicorn)."""
    return client_address(request) or "unknown"


# --- ALTCHA --------------------------------------------------------------------------------


def _captcha_key(request: Request) -> bytes:
    secret = app_state(request).settings.resolved_secret_key()
    return hashlib.sha256(b"stmails-altcha\x00" + secret.encode()).digest()


def new_challenge(request: Request, complexity: int) -> dict[str, Any]:
    """A fresh ALTCHA challenge (signed, expiring in CAPTCHA_LIFETIME) as the widget reads it."""
    options = altcha_v1.ChallengeOptions(
        hmac_key=_captcha_key(request),
        max_number=complexity,
        expires=utcnow() + CAPTCHA_LIFETIME,
    )
    challenge = altcha_v1.create_challenge(options)
    return dict(challenge.to_dict())


def solved_challenge(request: Request, payload: str) -> str | None:
    """The challenge `payload` (the widget's field) solves, when it is one we made and it has
    not expired; else None."""
    if not payload or len(payload) > CAPTCHA_MAX_CHARS:
        return None
    try:
        ok, _ = altcha_v1.verify_solution(payload, _captcha_key(request), check_expires=True)
        challenge = json.loads(base64.b64decode(payload, validate=True))["challenge"]
    except (ValueError, TypeError, KeyError):
        return None
    return challenge if ok and isinstance(challenge, str) else None


def captcha_first_use(session: Session, challenge: str) -> bool:
    """Records a solved challenge; False when it was used before (a replay, however the payload
    is re-encoded). Kept until the challenge would have expired anyway."""
    return webhook_nonces.first_use(
        session, "altcha", challenge[:200], utcnow() + CAPTCHA_LIFETIME, now=utcnow()
    )
