"""A small listmonk API client, written from listmonk's API documentation the way an
integration would be: it knows listmonk's paths, its `{"data": ...}` envelope, its two
authentication forms and its error bodies, and nothing of stmails.

The parity tests (`test_listmonk_*.py`) drive stmails through it, so that what they check is
what a listmonk client sees.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient


class ListmonkError(Exception):
    """A non-2xx answer: its status and listmonk's `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ListmonkClient:
    """Calls listmonk's API with `api_user:token` as HTTP Basic or as `token` header."""

    def __init__(
        self,
        http: TestClient | httpx.Client,
        username: str,
        token: str,
        *,
        scheme: str = "basic",
    ) -> None:
        self.http = http
        if scheme == "basic":
            raw = base64.b64encode(f"{username}:{token}".encode()).decode()
            self.authorization = f"Basic {raw}"
        else:
            self.authorization = f"token {username}:{token}"

    def request(
        self, method: str, path: str, *, params: Any = None, json: Any = None
    ) -> httpx.Response:
        """The raw answer (for routes that answer HTML, CSV or a bare object)."""
        headers = {"Authorization": self.authorization}
        if json is not None:
            headers["Content-Type"] = "application/json"
        return self.http.request(
            method,
            path,
            params=params,
            content=None if json is None else orjson.dumps(json),
            headers=headers,
            auth=None,
        )

    def call(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        """The `data` of a JSON answer; ListmonkError for any other status than 2xx."""
        response = self.request(method, path, params=params, json=json)
        if response.status_code >= 300:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = response.text
            raise ListmonkError(response.status_code, message)
        return response.json()["data"]

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json={} if body is None else body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, json={} if body is None else body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params=params or None)

    def login(self) -> bool:
        """What listmonk's clients do first: `GET /api/health` with the credentials."""
        return bool(self.get("/api/health"))
