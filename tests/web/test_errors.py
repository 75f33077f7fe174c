"""Error answers: 413 past the body cap, 503 with Retry-After when the database is unavailable
or locked, 400 (not 422) for bad parameters, JSON 500 without internals for our bugs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from stmails.config import Settings
from stmails.db.engine import make_engine
from stmails.services.errors import Conflict, Forbidden, InputError, InvalidInput, NotFound
from stmails.services.sending.campaigns import CampaignError
from stmails.services.sending.direct import DirectSendError
from stmails.services.sending.messages import MessageError
from stmails.services.sending.templates import TemplateRenderError
from stmails.services.subscriber_query import QueryError
from stmails.services.suppression import SuppressionInputError
from stmails.web.app import create_app
from stmails.web.errors import install_error_handlers


def test_body_over_the_cap_is_413(client: TestClient) -> None:
    big = b'{"email": "a@b.org", "source": "api", "type": "hard", "meta": "' + b"x" * 1_100_000
    response = client.post(
        "/webhooks/bounce", content=big + b'"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["message"]


# The bounce webhook goes through the app's short stack for hot paths (web.hot_paths).
@pytest.mark.parametrize("path", ["/api/lists", "/webhooks/bounce"])
def test_cap_is_enforced_while_reading_not_only_by_content_length(
    client: TestClient, path: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@b.org", "source": "api", "type": "hard", "meta": "'
        for _ in range(20):
            yield b"y" * 100_000
        yield b'"}'

    # A generator body is sent chunked: no Content-Length to trust.
    response = client.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert client.get("/api/bounces").json()["data"]["total"] == 0


def test_bad_path_parameter_is_400_naming_it(client: TestClient) -> None:
    response = client.get("/api/subscribers/not-a-number")
    assert response.status_code == 400
    assert "subscriber_id" in response.json()["message"]


def test_unknown_route_is_404_json(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert "message" in response.json()


def test_unexpected_error_is_json_500_without_internals(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"message": "internal server error"}


def _unreachable_app(tmp_path: Path) -> FastAPI:
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite"
    return create_app(Settings(database_url=f"sqlite:///{missing}"))


def test_unreachable_database_is_503_with_retry_after(tmp_path: Path) -> None:
    with TestClient(_unreachable_app(tmp_path), raise_server_exceptions=False) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert "retry-after" in health.headers
        api = client.get("/api/lists", auth=("robot", "robot-token-0123456789"))
        assert api.status_code == 503
        assert api.headers["retry-after"]
        hook = client.post(
            "/webhooks/bounce",
            json={"email": "a@b.org", "source": "api", "type": "hard"},
            auth=("robot", "robot-token-0123456789"),
        )
        assert hook.status_code == 503


def test_locked_database_is_503_and_nothing_is_acknowledged(
    engine: Engine, app: FastAPI, db_url: str, api_credentials: tuple[str, str]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("locks the SQLite file; PostgreSQL has no file lock to take")
    locked_app = create_app(
        Settings(database_url=db_url, db_busy_timeout_ms=50),
        engine=make_engine(db_url, busy_timeout_ms=50),
    )
    with TestClient(locked_app, raise_server_exceptions=False) as client:
        client.auth = api_credentials
        # Authenticate once, so the cached check lets the request reach the writer.
        assert client.get("/api/lists").status_code == 200
        holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            response = client.post(
                "/webhooks/bounce", json={"email": "a@b.org", "source": "api", "type": "hard"}
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert client.get("/api/bounces").json()["data"]["total"] == 0


def test_health_does_not_wait_for_a_writer(
    engine: Engine,
    client: TestClient,
    write_lock_held: Callable[[Engine, str], AbstractContextManager[None]],
) -> None:
    with write_lock_held(engine, "settings"):
        started = time.monotonic()
        response = client.get("/health")
        waited = time.monotonic() - started
    assert (response.status_code, response.json()) == (200, {"data": True})
    # The busy timeout is 5 s: a ping that needed the lock would have waited for it.
    assert waited < 4


def test_openapi_is_served_with_both_auth_schemes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/webhooks/bounce" in schema["paths"]
    assert "get" in schema["paths"]["/health"]
    assert "/api/subscribers" in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {"basic", "token"}


def test_every_service_input_error_is_a_400_from_one_handler() -> None:
    # The services' input errors share one base that web.errors maps once; a route raises
    # them as they come (no per-route translation) and the caller gets 400 with the message.
    raised: dict[str, tuple[Exception, int]] = {
        "campaign": (CampaignError("the campaign is finished"), 400),
        "suppression": (SuppressionInputError("domain: not a domain name"), 400),
        "direct": (DirectSendError("template 9 not found"), 400),
        "message": (MessageError("bad header"), 400),
        "template": (TemplateRenderError("unexpected end of template"), 400),
        "query": (QueryError("at 3: unknown field"), 400),
        "invalid": (InvalidInput("name", "required"), 400),
        "forbidden": (Forbidden("you do not hold lists:manage"), 403),
        "missing": (NotFound("list not found"), 404),
        "conflict": (Conflict("email", "already a subscriber"), 409),
    }
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{kind}")
    def fail(kind: str) -> None:
        raise raised[kind][0]

    with TestClient(app) as client:
        for kind, (exc, status) in raised.items():
            assert isinstance(exc, InputError) == (status == 400), kind
            response = client.get(f"/raise/{kind}")
            assert (response.status_code, response.json()) == (status, {"message": str(exc)})
