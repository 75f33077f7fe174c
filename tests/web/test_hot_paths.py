"""web.hot_paths: the short stack of the hot routes answers as the full stack does."""

from __future__ import annotations

import pytest
from fastapi.middleware import Middleware
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.services.errors import InvalidInput
from stmails.web.errors import (
    BodySizeLimitMiddleware,
    CatchAllMiddleware,
    install_error_handlers,
    unavailable,
)
from stmails.web.hot_paths import StmailsApp, header, read_body


class Failing:
    """An ASGI endpoint raising the exception its path names."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        failures: dict[str, Exception] = {
            "invalid": InvalidInput("x", "bad"),
            "unavailable": unavailable("busy"),
            "bug": RuntimeError("secret internal detail"),
        }
        raise failures[scope["path_params"]["kind"]]


def _hot_app() -> StmailsApp:
    app = StmailsApp(
        middleware=[
            Middleware(CatchAllMiddleware),
            Middleware(BodySizeLimitMiddleware, default_limit=100),
        ]
    )
    install_error_handlers(app, {InvalidInput: 400})
    app.add_hot_route(Route("/hot/{kind}", Failing(), methods=["POST"]))
    return app


def test_hot_route_errors_are_answered_by_the_apps_handlers() -> None:
    with TestClient(_hot_app(), raise_server_exceptions=False) as client:
        invalid = client.post("/hot/invalid")
        assert (invalid.status_code, invalid.json()) == (400, {"message": "x: bad"})
        busy = client.post("/hot/unavailable")
        assert busy.status_code == 503 and busy.headers["retry-after"]
        bug = client.post("/hot/bug")
        assert (bug.status_code, bug.json()) == (500, {"message": "internal server error"})


def test_hot_route_bodies_are_capped_and_other_methods_take_the_full_stack() -> None:
    with TestClient(_hot_app(), raise_server_exceptions=False) as client:
        assert client.post("/hot/invalid", content=b"x" * 101).status_code == 413
        assert client.get("/hot/invalid").status_code == 405


def test_hot_routes_must_be_plain_asgi_endpoints() -> None:
    async def endpoint() -> None:
        return None

    with pytest.raises(TypeError):
        _hot_app().add_hot_route(Route("/hot/function", endpoint))


class Echo:
    """An ASGI endpoint answering the path parameters and the body it was given."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        answer = f"{scope['path_params']}|{body.decode()}|{header(scope, b'x-probe')!r}"
        await PlainTextResponse(answer)(scope, receive, send)


def test_a_fixed_path_is_served_by_its_hot_route_and_other_methods_get_405() -> None:
    app = _hot_app()
    app.add_hot_route(Route("/hot-fixed/echo", Echo(), methods=["POST"]))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/hot-fixed/echo", content=b"hello", headers={"x-probe": "1"})
        assert (answer.status_code, answer.text) == (200, "{}|hello|b'1'")
        assert client.get("/hot-fixed/echo").status_code == 405
        # Declared within the cap, declared over it, and chunked over it.
        assert client.post("/hot-fixed/echo", content=b"x" * 100).status_code == 200
        assert client.post("/hot-fixed/echo", content=b"x" * 101).status_code == 413
        chunked = client.post("/hot-fixed/echo", content=iter([b"x" * 60, b"x" * 60]))
        assert chunked.status_code == 413
