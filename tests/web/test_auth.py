"""listmonk's auth: Basic with api_user:token or admin:password, or `Authorization: token`."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from fastapi.testclient import TestClient
from sqlalchemy import Engine


def _basic(user: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_every_api_route_needs_credentials(client: TestClient) -> None:
    client.auth = None
    for method, path in [
        ("GET", "/api/subscribers"),
        ("GET", "/api/lists"),
        ("GET", "/api/campaigns"),
        ("GET", "/api/bounces"),
        ("GET", "/api/settings"),
        ("POST", "/webhooks/bounce"),
        ("GET", "/api/import/subscribers"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["message"] == "authentication required"
        assert response.headers["www-authenticate"].startswith("Basic")


def test_health_needs_none(client: TestClient) -> None:
    client.auth = None
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"data": True}


def test_api_user_by_basic_and_by_token_header(
    client: TestClient, api_credentials: tuple[str, str]
) -> None:
    API = api_credentials
    client.auth = None
    assert client.get("/api/lists", headers=_basic(*API)).status_code == 200
    token = {"Authorization": f"token {API[0]}:{API[1]}"}
    assert client.get("/api/lists", headers=token).status_code == 200


def test_admin_by_password(client: TestClient, admin_credentials: tuple[str, str]) -> None:
    ADMIN = admin_credentials
    client.auth = None
    assert client.get("/api/lists", headers=_basic(*ADMIN)).status_code == 200


def test_wrong_or_malformed_credentials_are_403_as_in_listmonk(
    client: TestClient, api_credentials: tuple[str, str], admin_credentials: tuple[str, str]
) -> None:
    API, ADMIN = api_credentials, admin_credentials
    client.auth = None
    for headers in [
        _basic(API[0], "wrong-token"),
        _basic("nobody", API[1]),
        _basic(ADMIN[0], API[1]),
        {"Authorization": "token robot"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer abc"},
    ]:
        response = client.get("/api/lists", headers=headers)
        # listmonk answers sent credentials it cannot accept with 403 (no challenge): only a
        # request without credentials is asked for some (401 with WWW-Authenticate).
        assert response.status_code == 403, headers
        assert "message" in response.json()
        assert "www-authenticate" not in response.headers


def test_an_api_token_is_not_a_password_for_the_admin(
    client: TestClient, api_credentials: tuple[str, str], admin_credentials: tuple[str, str]
) -> None:
    API, ADMIN = api_credentials, admin_credentials
    # The API user's token does not work as the admin's password, nor the reverse.
    client.auth = None
    assert client.get("/api/lists", headers=_basic(API[0], ADMIN[1])).status_code == 403


def test_checking_credentials_never_waits_for_the_write_lock(
    client: TestClient,
    engine: Engine,
    api_credentials: tuple[str, str],
    write_lock_held: Callable[[Engine, str], AbstractContextManager[None]],
) -> None:
    with write_lock_held(engine, "users"):
        started = time.monotonic()
        # A first request with these credentials: nothing cached, so the users table is read.
        response = client.get("/api/lists", headers=_basic(*api_credentials))
        waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    # The busy timeout is 5 s: a check that needed the lock would have waited for it.
    assert waited < 4
