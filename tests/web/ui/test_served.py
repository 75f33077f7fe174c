"""What only the real server (`stmails serve`, uvicorn) shows: HTTPS behind a trusted proxy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from stmails.services import login_guard
from web.ui.conftest import Server

pytestmark = pytest.mark.integration


def test_a_trusted_proxys_https_makes_cookies_secure(ui_server: Server) -> None:
    # The default trusted proxies are the loopback addresses the test connects from.
    proxied = httpx.get(f"{ui_server.base_url}/admin/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["set-cookie"]
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    direct = httpx.get(f"{ui_server.base_url}/admin/login")
    assert "Secure" not in direct.headers["set-cookie"]
    assert "strict-transport-security" not in direct.headers


def test_forwarded_headers_of_untrusted_clients_are_ignored(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(env={"STMAILS_TRUSTED_PROXIES": ""})
    answer = httpx.get(
        f"{server.base_url}/admin/login",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"},
    )
    assert "Secure" not in answer.headers["set-cookie"]
    # The throttle counts the real peer, whatever X-Forwarded-For claims: failures under many
    # names from "different" forwarded addresses lock the one real address.
    for n in range(login_guard.ADDRESS_POLICY.free):
        httpx.get(
            f"{server.base_url}/api/lists",
            auth=(f"nobody{n}", "wrong-password"),
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
    answer = httpx.get(
        f"{server.base_url}/api/lists",
        auth=("somebody-else", "wrong-password"),
        headers={"X-Forwarded-For": "203.0.113.200"},
    )
    assert answer.status_code == 429
