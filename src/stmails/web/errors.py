"""Error answers in listmonk's shape (`{"message": "..."}`) and the handlers that produce them.

Rules this module enforces for every route:
- the caller's mistakes are 4xx with a message naming the field or value at fault;
- our own faults (database unavailable, locked, pool exhausted, timeouts) are 503 with Retry-After
  so that senders retry;
- an unexpected exception is logged here with its traceback and answered with a JSON 500 that
  carries no internals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stmails.db.handles import (
    DBAPIError,
    DisconnectionError,
    OperationalError,
    PoolTimeoutError,
)
from stmails.services.errors import Conflict, Forbidden, InputError, NotFound

log = logging.getLogger("stmails.web")

RETRY_AFTER_SECONDS = "5"

# The services' errors and their statuses: the one place they are mapped (a subclass, such as
# CampaignError or QueryError of InputError, takes its nearest base's status). The message is
# the answer.
SERVICE_ERRORS: dict[type[Exception], int] = {
    InputError: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
}


class ApiError(Exception):
    """An error the API answers with `status` and `{"message": message}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    """400: the caller sent something we cannot accept; the message names it."""
    return ApiError(400, message)


def not_found(what: str) -> ApiError:
    """404 for an unknown id of `what` ("subscriber", "list", ...)."""
    return ApiError(404, f"{what} not found")


def unavailable(message: str = "the database is unavailable or busy; retry later") -> ApiError:
    """503 with Retry-After: our fault and transient, so the caller should retry."""
    return ApiError(503, message, {"Retry-After": RETRY_AFTER_SECONDS})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON error body every failing route answers with."""
    return Response(
        orjson.dumps({"message": message}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One readable sentence from pydantic/FastAPI validation errors, naming each field."""
    parts: list[str] = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            field, msg = "body", "is not valid JSON"
        parts.append(f"{field}: {msg}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "invalid request: " + "; ".join(parts)


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database is down, locked, busy or out of connections."""
    if isinstance(exc, OperationalError | PoolTimeoutError | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, describe_validation_errors(exc.errors()))


def _caller_error(status: int) -> Any:
    async def handler(_: Request, exc: Exception) -> Response:
        return error_response(status, str(exc))

    return handler


async def _database_error(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503,
            "the database is unavailable or busy; retry later",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )
    log.exception("database error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")


def install_error_handlers(
    app: FastAPI, caller_errors: dict[type[Exception], int] | None = None
) -> None:
    """Registers the JSON error handlers on `app`: `SERVICE_ERRORS`, then `caller_errors`, which
    maps other exception classes that mean "the caller sent something wrong" (outside the
    services, such as the ingest parsers' errors) to their status; their message is the answer.
    """
    for exc_class, status in {**SERVICE_ERRORS, **(caller_errors or {})}.items():
        app.add_exception_handler(exc_class, _caller_error(status))
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(DisconnectionError, _database_error)


class StartTrackingSend:
    """Wraps an ASGI `send`; `started` tells whether the response has begun (after which an
    error can no longer be answered with a response of its own)."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class CatchAllMiddleware:
    """Answers any exception that escaped the routes with JSON and logs it once.

    Starlette's own last-resort handler re-raises after answering, which prints a second
    traceback and makes TestClient fail; this one ends the request here instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = StartTrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if tracked.started:
                return
            if is_database_unavailable(exc):
                response = error_response(
                    503,
                    "the database is unavailable or busy; retry later",
                    {"Retry-After": RETRY_AFTER_SECONDS},
                )
            else:
                response = error_response(500, "internal server error")
            await response(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised from `receive` when a request body passes its size cap."""


class BodySizeLimitMiddleware:
    """Caps request bodies while they are read (not only by Content-Length): 413 past the cap.

    `limits_by_path` gives larger caps to named paths (e.g. the CSV import); every other path
    gets `default_limit`. Once a body passes its cap, whatever the route answers is replaced by
    a 413, so no route sees a truncated body as if it were whole. A request that declares its
    length (Content-Length, no Transfer-Encoding) within the cap goes through untouched: the
    HTTP server delivers no more than the declared length.
    """

    def __init__(
        self, app: ASGIApp, default_limit: int, limits_by_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits_by_path = limits_by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits_by_path.get(scope["path"], self.default_limit)
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    # Unreadable: the body is capped as it is read.
                    declared = None
            elif name == b"transfer-encoding":
                chunked = True
        message = f"request body too large (limit {limit} bytes)"
        if declared is not None and declared > limit:
            await error_response(413, message)(scope, receive, send)
            return
        if declared is not None and not chunked:
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(message)
            return event

        async def guarded_send(event: Message) -> None:
            nonlocal replaced
            if exceeded:
                if event["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await error_response(413, message)(scope, receive, send)
                return
            await send(event)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not replaced:
                await error_response(413, message)(scope, receive, send)
