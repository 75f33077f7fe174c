"""web.hot_paths: the short stack of the hot routes answers as the full stack does."""

from __future__ import annotations

import pytest
from fastapi.middleware import Middleware
from fastapi.testclient import TestClient
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.services.errors import InvalidInput
from stmails.web.errors import (
    BodySizeLimitMiddleware,
    CatchAllMiddleware,
    install_error_handlers,
    unavailable,
)
from stmails.web.hot_paths import StmailsApp


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
