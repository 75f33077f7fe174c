"""A short way through the app for the ingest hot paths.

FastAPI and Starlette take every request through about ten layers (telemetry checks, server
error, body-limit, exception and exit-stack middleware, then every route of the router in turn).
The bounce webhooks are plain ASGI endpoints that use none of that, and at a thousand requests
a second those layers cost as much CPU as the endpoints themselves. `StmailsApp` sends a request
that one of its hot routes matches through a short stack instead: the app's own middleware (the
last-resort handler, the body size cap) around the app's exception handlers around the route.
The answers are the same as through the full stack; only FastAPI's telemetry hooks are skipped.
Every other request (and any request when the app runs under a root path) takes the full stack.
A hot route without path parameters is found by its exact path (a dictionary lookup), the others
by their pattern; a request with a method the route does not take goes the full way (405).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stmails.web.errors import StartTrackingSend


class HandledErrors:
    """Answers an exception raised by `app` with the handler registered for its class (or the
    nearest base class), as Starlette's ExceptionMiddleware does; re-raises the others, and any
    exception raised once the response has started."""

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, Any]) -> None:
        self.app = app
        # Status-code keys and `Exception` belong to Starlette's outer ServerErrorMiddleware.
        self.handlers = {
            key: value
            for key, value in handlers.items()
            if isinstance(key, type) and key is not Exception
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An outer layer's tracker already knows when the response starts: one wrapper is enough.
        tracked = send if isinstance(send, StartTrackingSend) else StartTrackingSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            handler = next(
                (self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None
            )
            if handler is None or tracked.started:
                raise
            request = Request(scope, receive)
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            await response(scope, receive, send)


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the (lower-case) header `name`, as the client sent it."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def json_headers(body: bytes, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[bytes, bytes]]:
    """The ASGI headers of an `application/json` answer carrying `body`, then `extra`."""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra)
    return headers


async def send_json(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Answers 200 with `body` and `headers` (from `json_headers`, made once for a constant
    body) as the two ASGI messages, without building a Starlette Response."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the size cap is the middleware's); ClientDisconnect when the
    client goes away first, as Starlette's Request.body() raises."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def _matched_route(scope: Scope, receive: Receive, send: Send) -> None:
    """Hands the request to the hot route `StmailsApp` matched it to (method included, so
    Route.handle's method check has nothing left to do)."""
    route: Route = scope["stmails.hot_route"]
    await route.app(scope, receive, send)


class StmailsApp(FastAPI):
    """FastAPI with a short stack for the routes given to `add_hot_route` (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hot_routes: list[Route] = []
        self._hot_exact: dict[str, Route] = {}
        self._hot_patterns: list[Route] = []
        self._hot_prefixes: tuple[str, ...] = ()
        self._hot_stack: ASGIApp | None = None

    def add_hot_route(self, route: Route) -> None:
        """Routes `route` first in the router, and through the short stack.

        Its path must start with a fixed segment (e.g. `/webhooks/`, or be one, e.g. `/health`):
        requests are screened by that prefix before any matching. Its endpoint must be a plain
        ASGI app (a class instance): a request/response function expects Starlette's exception
        middleware.
        """
        if inspect.isfunction(route.endpoint) or inspect.ismethod(route.endpoint):
            raise TypeError(f"hot route {route.path}: the endpoint must be a plain ASGI app")
        self.router.routes.insert(len(self._hot_routes), route)
        self._hot_routes.append(route)
        if route.param_convertors:
            self._hot_patterns.append(route)
        else:
            self._hot_exact.setdefault(route.path, route)
        first, _, rest = route.path.lstrip("/").partition("/")
        # A one-segment path (`/health`) is its own prefix.
        prefix = "/" + first + ("/" if rest else "")
        if prefix not in self._hot_prefixes:
            self._hot_prefixes += (prefix,)
        self._hot_stack = None

    def _build_hot_stack(self) -> ASGIApp:
        stack: ASGIApp = HandledErrors(_matched_route, self.exception_handlers)
        for middleware in reversed(self.user_middleware):
            cls, args, kwargs = middleware
            # Middleware for pages (security headers) says it has no business on hot routes.
            if getattr(cls, "hot_path", True):
                stack = cls(stack, *args, **kwargs)
        return stack

    def _hot_route(self, scope: Scope) -> Route | None:
        if scope["type"] != "http" or self.root_path or scope.get("root_path"):
            return None
        path = scope["path"]
        if not path.startswith(self._hot_prefixes):
            return None
        route = self._hot_exact.get(path)
        if route is not None:
            # What Route.matches would find for this fixed path (methods include HEAD with GET).
            if route.methods and scope["method"] not in route.methods:
                return None
            scope["endpoint"] = route.endpoint
            scope["path_params"] = dict(scope.get("path_params", {}))
            return route
        for route in self._hot_patterns:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._hot_route(scope) if self._hot_routes else None
        if route is None:
            await super().__call__(scope, receive, send)
            return
        if self._hot_stack is None:
            self._hot_stack = self._build_hot_stack()
        scope["app"] = self
        scope["stmails.hot_route"] = route
        await self._hot_stack(scope, receive, send)
