"""Shared steps of the admin page tests over HTTP: a signed-in browser-like client, users with
a role of chosen permissions, and form posts with the CSRF token and our Origin."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from web.ui.test_pages import ORIGIN, csrf_of, sign_in

__all__ = ["ORIGIN", "csrf_of", "make_user", "post_form", "sign_in"]


def make_user(
    api: TestClient, username: str, *permissions: str, password: str = "a-good-password-1"
) -> tuple[str, str]:
    """A password user whose role grants exactly `permissions`, made through the API."""
    role = api.post(
        "/api/roles/users", json={"name": f"role-{username}", "permissions": list(permissions)}
    )
    assert role.status_code == 200, role.text
    made = api.post(
        "/api/users",
        json={
            "username": username,
            "password": password,
            "type": "user",
            "status": "enabled",
            "user_role_id": role.json()["data"]["id"],
        },
    )
    assert made.status_code == 200, made.text
    return username, password


def post_form(
    client: TestClient, path: str, token: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """A form post as the browser sends it (CSRF token and Origin), redirects not followed."""
    return client.post(
        path,
        data={"csrf_token": token, **(data or {})},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
        **kwargs,
    )


def flash_texts(html: str) -> list[str]:
    """The flash messages shown on a page."""
    return re.findall(r'<p class="flash flash-\w+">([^<]*)</p>', html)
