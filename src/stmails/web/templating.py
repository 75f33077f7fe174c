"""Server-rendered pages: the Jinja2 environment, the shipped static assets and `render()`.

- Autoescaping is on for every template (and `StrictUndefined` makes a misspelt variable an
  error, not an empty string): every value is text unless a template says otherwise, which none
  of ours does for anything a user, a subscriber, a mail or a webhook supplied.
- Strings are translated through the request's locale (web.i18n); `{% trans %}` blocks use
  Jinja's new-style gettext, so their placeholders are escaped too.
- Static files under `web/static/` are served at `/static/<digest>/<path>`, where the digest is
  the start of the file's SHA-256: the URL changes whenever the file does, so browsers may
  cache it for a year (`immutable`). `static_url(path)` in templates makes those URLs; an
  unknown path is an error when the template renders, not a broken page.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from stmails.web import i18n

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PREFIX = "/static"
STATIC_CACHE = "public, max-age=31536000, immutable"
DIGEST_LENGTH = 12
# Types the assets need that not every system's mime table knows.
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One shipped static file: its content, type and digest."""

    body: bytes
    media_type: str
    digest: str


@functools.cache
def assets() -> Mapping[str, Asset]:
    """Every file under web/static (read once per process), by its path relative to it."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(STATIC_DIR).as_posix()
        body = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        if media_type.startswith("text/") or media_type == "application/json":
            media_type += "; charset=utf-8"
        digest = hashlib.sha256(body).hexdigest()[:DIGEST_LENGTH]
        found[relative] = Asset(body, media_type, digest)
    return found


def static_url(path: str) -> str:
    """The versioned URL of the shipped file `path` (relative to web/static)."""
    asset = assets().get(path)
    if asset is None:
        raise LookupError(f"no static file {path!r} in {STATIC_DIR}")
    return f"{STATIC_PREFIX}/{asset.digest}/{path}"


async def serve_static(request: Request) -> Response:
    """`GET /static/<digest>/<path>`: the file when the digest is its current one, else 404."""
    asset = assets().get(request.path_params["path"])
    if asset is None or asset.digest != request.path_params["digest"]:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={"Cache-Control": STATIC_CACHE, "ETag": f'"{asset.digest}"'},
    )


STATIC_ROUTE = Route(
    f"{STATIC_PREFIX}/{{digest:str}}/{{path:path}}",
    serve_static,
    methods=["GET"],
    include_in_schema=False,
    name="static",
)


def _gettext(message: str) -> str:
    return i18n.gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(singular, plural, n)


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment of the pages (autoescaping everywhere)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Looked up in the current request's locale each time a string is shown.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["static_url"] = static_url
    env.globals["language_names"] = i18n.LANGUAGE_NAMES
    return env


def render_html(template: str, context: Mapping[str, Any], locale: str) -> str:
    """The text of `template` rendered with `context` in `locale`."""
    with i18n.use_locale(locale):
        return environment().get_template(template).render(**context)


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    locale: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """An HTML answer of `template`; never cached (it may show private data)."""
    body = render_html(template, context, locale)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers.setdefault("Cache-Control", "no-store")
    return response
