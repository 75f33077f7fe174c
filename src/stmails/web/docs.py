"""The interactive API documentation at `/docs`, served from the package: no CDN.

FastAPI's own `/docs` page loads Swagger UI from a CDN and starts it with an inline script; this
one loads the copy shipped under `web/static/swagger/` (mounted at `/docs/assets`) and starts it
from a static file, so it works offline and under a Content-Security-Policy of script-src 'self'
(which the page also sends). Like FastAPI's, it needs no credentials: the OpenAPI document it
shows is public, and calls made from it carry the credentials the user types in.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "swagger"
ASSETS_PATH = "/docs/assets"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Adds `GET /docs` and its assets to `app` (made with `docs_url=None`)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = _PAGE.format(
            title=escape(app.title),
            assets=escape(root + ASSETS_PATH),
            openapi=escape(root + (app.openapi_url or "/openapi.json")),
        )
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
            },
        )
