"""What browsers bring that API clients do not: cookies, CSRF tokens, Origin checks, flashes.

- The session cookie (`stmails_session`) carries a browser session's token (services.sessions);
  the pre-session cookie (`stmails_presession`) a random value that binds the CSRF token of
  forms shown before sign-in (login, first run, password reset). Both are HttpOnly,
  SameSite=Lax, path `/`, and Secure when the request came over HTTPS (directly, or through a
  trusted proxy's X-Forwarded-Proto: uvicorn rewrites the scheme for `trusted_proxies`).
- `check_unsafe_request` is the one check every unsafe method (POST, PUT, PATCH, DELETE) from a
  browser passes: the Origin (or, without one, the Referer) must be this server's, and the CSRF
  token (form field `csrf_token` or header `X-CSRF-Token`) must be the one derived from the
  request's own cookie.
- Flash messages ride a short-lived signed cookie from a redirect to the next page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from stmails.services import sessions as session_service
from stmails.services.two_factor import SecretBox

SESSION_COOKIE = "stmails_session"
PRESESSION_COOKIE = "stmails_presession"
FLASH_COOKIE = "stmails_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FLASH_MAX_BYTES = 2048
FLASH_LEVELS = ("info", "success", "error")


class CsrfRefused(Exception):
    """An unsafe browser request without a valid CSRF token or from another origin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrowserKeys:
    """The keys derived from the server's secret key: CSRF tokens and flash cookies are signed
    with `secret`, TOTP secrets sealed by `totp_box`. Derived on first use, so that an app that
    never serves a browser never reads (or creates) the key file."""

    def __init__(self, secret_key: Callable[[], str]) -> None:
        self._source = secret_key
        self._secret: bytes | None = None
        self._box: SecretBox | None = None

    @property
    def secret(self) -> bytes:
        """The signing key of CSRF tokens and flash cookies."""
        if self._secret is None:
            self._secret = hashlib.sha256(b"stmails-browser\x00" + self._source().encode()).digest()
        return self._secret

    @property
    def totp_box(self) -> SecretBox:
        """Seals and opens TOTP secrets at rest."""
        if self._box is None:
            self._box = SecretBox(self._source())
        return self._box


def is_https(request: Request) -> bool:
    """True when the request reached us over HTTPS (scheme set by uvicorn's proxy handling)."""
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For already applied by uvicorn)."""
    return request.client.host if request.client else ""


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    """Sets one of our cookies with the flags every one of them carries."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    """Deletes one of our cookies (same flags, so the browser matches it)."""
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request))


def csrf_binding(request: Request) -> str | None:
    """The secret cookie value this request's CSRF token is bound to: the session token when
    there is one, else the pre-session value (None when the browser sent neither)."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)


def allowed_origins(request: Request, root_url: str) -> set[str]:
    """The origins a browser form or script of ours posts from: the request's own host (as the
    browser addressed it) and the configured public root URL."""
    origins = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    root = urlsplit(root_url)
    if root.scheme and root.netloc:
        origins.add(f"{root.scheme}://{root.netloc}".lower())
    return origins


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, root_url: str) -> None:
    """Refuses an unsafe request whose Origin (else Referer) is not ours. A request with
    neither (not a browser's) is left to the CSRF token."""
    origin = request.headers.get("origin")
    if origin is not None:
        claimed = _origin_of(origin) if origin != "null" else None
    else:
        referer = request.headers.get("referer")
        if referer is None:
            return
        claimed = _origin_of(referer)
    if claimed is None or claimed not in allowed_origins(request, root_url):
        raise CsrfRefused("cross-origin request refused")


def check_csrf_token(request: Request, keys: BrowserKeys, token: str | None) -> None:
    """Refuses when `token` is not the CSRF token of this request's cookie."""
    if not session_service.csrf_valid(keys.secret, csrf_binding(request), token):
        raise CsrfRefused("missing or invalid CSRF token")


async def check_unsafe_request(
    request: Request, keys: BrowserKeys, root_url: str, *, header_only: bool = False
) -> None:
    """The Origin and CSRF checks of an unsafe-method browser request (nothing for safe
    methods). The token comes from the X-CSRF-Token header, or (unless `header_only`, as for
    the JSON API) from the form field `csrf_token`."""
    if request.method in SAFE_METHODS:
        return
    check_origin(request, root_url)
    token = request.headers.get(CSRF_HEADER)
    if token is None and not header_only:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    check_csrf_token(request, keys, token)


# Flash messages: (level, text) pairs signed into a cookie that lives for one redirect.


def _sign(keys: BrowserKeys, payload: bytes) -> str:
    mac = hmac.new(keys.secret, b"flash\x00" + payload, "sha256").digest()[:16]
    return (
        base64.urlsafe_b64encode(payload).decode().rstrip("=")
        + "."
        + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    )


def _unsign(keys: BrowserKeys, value: str) -> bytes | None:
    body, _, mac = value.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    except ValueError:
        return None
    expected = hmac.new(keys.secret, b"flash\x00" + payload, "sha256").digest()[:16]
    return payload if hmac.compare_digest(given, expected) else None


def add_flash(
    request: Request, response: Response, keys: BrowserKeys, level: str, text: str
) -> None:
    """Queues a message for the next page this browser renders."""
    messages = [*read_flashes(request, keys), {"level": level, "text": text}]
    payload = orjson.dumps(messages[-5:])
    while len(payload) > FLASH_MAX_BYTES and len(messages) > 1:
        messages = messages[1:]
        payload = orjson.dumps(messages)
    set_cookie(request, response, FLASH_COOKIE, _sign(keys, payload[:FLASH_MAX_BYTES]), 60)


def read_flashes(request: Request, keys: BrowserKeys) -> list[dict[str, str]]:
    """The queued messages (level, text) of this request's flash cookie."""
    value = request.cookies.get(FLASH_COOKIE)
    if not value or len(value) > 4 * FLASH_MAX_BYTES:
        return []
    payload = _unsign(keys, value)
    if payload is None:
        return []
    try:
        items: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(items, list):
        return []
    return [
        {"level": str(i["level"]), "text": str(i["text"])}
        for i in items
        if isinstance(i, Mapping) and i.get("level") in FLASH_LEVELS and "text" in i
    ]
