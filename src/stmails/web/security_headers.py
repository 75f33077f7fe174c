"""Security headers on every HTML answer (admin pages, subscriber pages, /docs) and on assets.

The Content-Security-Policy allows scripts, styles, fonts and connections from our own origin
only (no inline script or style, no eval), images from our origin and data: URLs (the 2FA QR
code), no framing (with X-Frame-Options for older browsers), forms posting only to us, and no
<base> element. Every answer gets X-Content-Type-Options: nosniff; HTML answers over HTTPS also
get Strict-Transport-Security.

The middleware is left out of the hot bounce routes' short stack (see web.hot_paths): their
JSON answers need none of this, and they must not pay for it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
HSTS = "max-age=31536000"

_HTML_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NOSNIFF = (b"x-content-type-options", b"nosniff")


class SecurityHeadersMiddleware:
    """Adds the headers above to the answers of `app` (see the module)."""

    # web.hot_paths builds the hot routes' stack without middleware that says so.
    hot_path = False

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                if content_type.startswith(b"text/html"):
                    headers.extend(h for h in _HTML_HEADERS if h[0] not in names)
                    if https and b"strict-transport-security" not in names:
                        headers.append((b"strict-transport-security", HSTS.encode()))
                if b"x-content-type-options" not in names:
                    headers.append(_NOSNIFF)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
