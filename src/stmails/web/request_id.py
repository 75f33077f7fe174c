"""Request ids: every HTTP request gets one, every log record made for it carries it, and the
answer echoes it in `X-Request-ID`.

A proxy or load balancer in front of stmails usually assigns the id (nginx's `$request_id`, an
Envoy or Heroku id): a well-formed `X-Request-ID` from the client is kept, so that the proxy's
logs and ours can be joined. Well-formed means 1 to `MAX_LENGTH` characters from `ALLOWED`
(letters, digits and `-_.:+/=@`), which covers UUIDs, hex and base64 ids; anything else (too long,
spaces, control characters, quotes) is replaced by a new id, since the value goes into logs
and a response header. A new id is 32 random hexadecimal digits.

The middleware is the application's outermost one, so that it also runs on the short stack of
the hot routes (`web.hot_paths`); it costs one scan of the headers, one context variable and
one header on the answer.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stmails.logs import REQUEST_ID

HEADER = b"x-request-id"
MAX_LENGTH = 128
ALLOWED = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:+/=@"


def accepted(value: bytes) -> bytes | None:
    """`value` when it is a well-formed request id (see the module), else None."""
    # Deleting every allowed byte leaves nothing of a well-formed id: one linear pass in C.
    if 0 < len(value) <= MAX_LENGTH and not value.translate(None, ALLOWED):
        return value
    return None


def new_request_id() -> bytes:
    """A fresh id: 128 random bits as hexadecimal."""
    return os.urandom(16).hex().encode("ascii")


class RequestIdMiddleware:
    """Gives each HTTP request its id (the client's if well-formed, else a new one), sets
    `stmails.logs.REQUEST_ID` while the request is handled, puts the id in the ASGI scope as
    `stmails.request_id` and adds `X-Request-ID` to the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        for name, value in scope["headers"]:
            if name == HEADER:
                request_id = accepted(value)
                break
        if request_id is None:
            request_id = new_request_id()
        text = request_id.decode("ascii")
        scope["stmails.request_id"] = text

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: a hot route may answer with a list of headers it shares.
                headers = [*message.get("headers", ()), (HEADER, request_id)]
                message = {**message, "headers": headers}
            await send(message)

        token = REQUEST_ID.set(text)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
