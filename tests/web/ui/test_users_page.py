"""Users and roles pages over HTTP: create users (password and API; the token shown once) and
roles with permission checkboxes, and the privilege rules of the services in the UI: a user
grants only what it holds, only a Super Admin grants Super Admin or manages a Super Admin user,
the last Super Admin stays."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from web.ui.helpers import ORIGIN, flash_texts, make_user, post_form, sign_in


@pytest.fixture
def browser(app: FastAPI, client: TestClient) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, base_url=ORIGIN)


def _new_browser(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, base_url=ORIGIN)


def _roles(api: TestClient) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in api.get("/api/roles/users").json()["data"]}


def _users(api: TestClient) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in api.get("/api/users").json()["data"]}


def test_create_a_user_with_a_role_who_then_signs_in_within_it(
    client: TestClient, browser: TestClient
) -> None:
    token = sign_in(browser)
    made = post_form(
        browser,
        "/admin/roles",
        token,
        {"kind": "user", "name": "Bounce readers", "permissions": ["bounces:get"]},
    )
    assert made.status_code == 303, made.text
    role = _roles(client)["Bounce readers"]
    assert role["permissions"] == ["bounces:get"]
    created = post_form(
        browser,
        "/admin/users",
        token,
        {
            "type": "admin",
            "username": "reader",
            "name": "Rea <b>der</b>",
            "email": "reader@example.org",
            "password": "reader-password-1",
            "role": str(role["id"]),
            "status": "enabled",
        },
    )
    assert created.status_code == 303, created.text
    assert "User reader created." in flash_texts(browser.get("/admin/users").text)
    listing = browser.get("/admin/users").text
    assert "Rea &lt;b&gt;der&lt;/b&gt;" in listing and "<b>der" not in listing

    reader = _new_browser(browser.app)
    sign_in(reader, "reader", "reader-password-1")
    home = reader.get("/admin/").text
    assert 'href="/admin/bounces"' in home and 'href="/admin/users"' not in home
    assert reader.get("/admin/bounces").status_code == 200
    for path in ("/admin/users", "/admin/roles", "/admin/suppression", "/admin/logs"):
        assert reader.get(path).status_code == 403, path


def test_api_user_token_is_shown_once_and_works(client: TestClient, browser: TestClient) -> None:
    token = sign_in(browser)
    role = _roles(client)["Super Admin"]
    answer = post_form(
        browser,
        "/admin/users",
        token,
        {"type": "api", "username": "robot2", "role": str(role["id"])},
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    found = re.search(r'<code class="token-once" id="api-token">([^<]+)</code>', answer.text)
    assert found
    api_token = found.group(1)
    with TestClient(browser.app) as api:
        assert api.get("/api/lists", auth=("robot2", api_token)).status_code == 200
    user = _users(client)["robot2"]
    for page in (browser.get("/admin/users"), browser.get(f"/admin/users/{user['id']}")):
        assert api_token not in page.text


def test_a_user_grants_only_what_it_holds(client: TestClient, browser: TestClient) -> None:
    make_user(
        client, "manager", "users:get", "users:manage", "roles:get", "roles:manage", "bounces:get"
    )
    super_role = _roles(client)["Super Admin"]
    token = sign_in(browser, "manager", "a-good-password-1")
    roles_page = browser.get("/admin/roles").text
    # What it does not hold is offered disabled; what it holds can be ticked.
    assert re.search(r'value="settings:manage" disabled', roles_page)
    assert re.search(r'value="bounces:get">', roles_page)

    wider = post_form(
        browser,
        "/admin/roles",
        token,
        {"kind": "user", "name": "Wider", "permissions": ["bounces:get", "settings:manage"]},
    )
    assert wider.status_code == 403 and "settings:manage" in wider.text
    assert "Wider" not in _roles(client)
    narrow = post_form(
        browser,
        "/admin/roles",
        token,
        {"kind": "user", "name": "Narrow", "permissions": ["bounces:get"]},
    )
    assert narrow.status_code == 303

    as_super = post_form(
        browser,
        "/admin/users",
        token,
        {
            "type": "admin",
            "username": "sneaky",
            "password": "sneaky-password-1",
            "role": str(super_role["id"]),
        },
    )
    assert as_super.status_code == 403 and "Super Admin" in as_super.text
    assert "sneaky" not in _users(client)

    admin_id = _users(client)["admin"]["id"]
    for path, form in (
        (f"/admin/users/{admin_id}", {"status": "disabled", "password": "taken-over-123"}),
        (f"/admin/users/{admin_id}/delete", {}),
    ):
        refused = post_form(browser, path, token, form)
        if refused.status_code == 303:
            assert "only a Super Admin" in " ".join(
                flash_texts(browser.get(refused.headers["location"]).text)
            )
        else:
            assert refused.status_code == 403 and "only a Super Admin" in refused.text
    assert _users(client)["admin"]["status"] == "enabled"

    # Its own role cannot be widened either.
    own = _roles(client)["role-manager"]
    widen = post_form(
        browser,
        f"/admin/roles/{own['id']}",
        token,
        {"name": "role-manager", "permissions": [*own["permissions"], "settings:maintain"]},
    )
    assert widen.status_code == 403
    assert "settings:maintain" not in _roles(client)["role-manager"]["permissions"]


def test_edit_and_delete_users_and_roles(client: TestClient, browser: TestClient) -> None:
    token = sign_in(browser)
    post_form(browser, "/admin/roles", token, {"kind": "user", "name": "Temp", "permissions": []})
    temp = _roles(client)["Temp"]
    post_form(
        browser,
        "/admin/users",
        token,
        {"username": "temp", "password": "temp-password-1", "role": str(temp["id"])},
    )
    user = _users(client)["temp"]
    assert user["user_role"]["name"] == "Temp"
    saved = post_form(
        browser,
        f"/admin/roles/{temp['id']}",
        token,
        {"name": "Temp2", "permissions": ["lists:get_all", "subscribers:get"]},
    )
    assert saved.status_code == 303
    assert _roles(client)["Temp2"]["permissions"] == ["lists:get_all", "subscribers:get"]
    in_use = post_form(browser, f"/admin/roles/{temp['id']}/delete", token)
    assert in_use.status_code == 303
    assert "assigned" in " ".join(flash_texts(browser.get(in_use.headers["location"]).text))

    edited = post_form(
        browser,
        f"/admin/users/{user['id']}",
        token,
        {
            "username": "temp",
            "name": "Temporary",
            "status": "disabled",
            "role": str(temp["id"]),
            "list_role": "",
        },
    )
    assert edited.status_code == 303
    assert (_users(client)["temp"]["status"], _users(client)["temp"]["name"]) == (
        "disabled",
        "Temporary",
    )
    assert post_form(browser, f"/admin/users/{user['id']}/delete", token).status_code == 303
    assert "temp" not in _users(client)
    assert post_form(browser, f"/admin/roles/{temp['id']}/delete", token).status_code == 303
    assert "Temp2" not in _roles(client)

    # A taken name is refused on the form, which keeps what was typed.
    taken = post_form(
        browser,
        "/admin/users",
        token,
        {
            "username": "admin",
            "name": "Second",
            "password": "another-pass-1",
            "role": str(_roles(client)["Super Admin"]["id"]),
        },
    )
    assert taken.status_code == 409 and "exists" in taken.text
    assert 'value="Second"' in taken.text


def test_list_roles_with_per_list_grants(client: TestClient, browser: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "Newsletter"}).json()["data"]["id"]
    token = sign_in(browser)
    made = post_form(
        browser,
        "/admin/roles",
        token,
        {
            "kind": "list",
            "name": "News editors",
            "list:get": [str(list_id)],
            "list:manage": [str(list_id)],
        },
    )
    assert made.status_code == 303, made.text
    [role] = client.get("/api/roles/lists").json()["data"]
    assert role["lists"] == [
        {"id": list_id, "name": "Newsletter", "permissions": ["list:get", "list:manage"]}
    ]
    page = browser.get("/admin/roles").text
    assert "Newsletter (list:get, list:manage)" in page


def test_users_get_alone_sees_but_cannot_change(client: TestClient, browser: TestClient) -> None:
    make_user(client, "looker", "users:get")
    token = sign_in(browser, "looker", "a-good-password-1")
    page = browser.get("/admin/users")
    assert page.status_code == 200 and 'action="/admin/users"' not in page.text
    assert 'href="/admin/roles"' not in page.text
    admin_id = _users(client)["admin"]["id"]
    assert post_form(browser, "/admin/users", token, {"username": "x"}).status_code == 403
    assert post_form(browser, f"/admin/users/{admin_id}/delete", token).status_code == 403
    assert post_form(browser, "/admin/roles", token, {"name": "x"}).status_code == 403
