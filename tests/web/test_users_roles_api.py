"""listmonk's users and user-roles API: shapes, role rules, the last Super Admin, and the auth
cache forgetting a changed user at once."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from stmails.services.roles import ALL_PERMISSIONS


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _role(client: TestClient, name: str, *permissions: str) -> dict[str, Any]:
    made: dict[str, Any] = _ok(
        client.post("/api/roles/users", json={"name": name, "permissions": list(permissions)})
    )
    return made


def test_roles_list_super_admin_first_with_every_permission(client: TestClient) -> None:
    made = _role(client, "Reader", "lists:get_all", "bounces:get", "lists:get_all")
    assert made["name"] == "Reader" and made["type"] == "user"
    assert made["permissions"] == ["bounces:get", "lists:get_all"]
    listed = _ok(client.get("/api/roles/users"))
    assert [r["name"] for r in listed] == ["Super Admin", "Reader"]
    assert set(listed[0]["permissions"]) == ALL_PERMISSIONS


def test_role_input_is_checked(client: TestClient) -> None:
    unknown = client.post("/api/roles/users", json={"name": "X", "permissions": ["lists:get"]})
    assert unknown.status_code == 400
    assert "lists:get" in unknown.json()["message"]
    assert client.post("/api/roles/users", json={"permissions": []}).status_code == 400
    _role(client, "Twice")
    assert client.post("/api/roles/users", json={"name": "Twice"}).status_code == 409
    assert client.post("/api/roles/users", json={"name": "Super Admin"}).status_code == 409


def test_super_admin_cannot_be_narrowed_renamed_or_deleted(client: TestClient) -> None:
    super_admin = _ok(client.get("/api/roles/users"))[0]
    path = f"/api/roles/users/{super_admin['id']}"
    narrowed = client.put(path, json={"permissions": ["lists:get_all"]})
    assert narrowed.status_code == 400
    assert client.put(path, json={"name": "Boss"}).status_code == 400
    assert client.delete(f"/api/roles/{super_admin['id']}").status_code == 400
    assert set(_ok(client.get("/api/roles/users"))[0]["permissions"]) == ALL_PERMISSIONS


def test_role_in_use_cannot_be_deleted_until_unassigned(client: TestClient) -> None:
    reader = _role(client, "Reader", "lists:get_all")
    super_admin = _ok(client.get("/api/roles/users"))[0]
    user = _ok(
        client.post("/api/users/api", json={"username": "bot", "user_role_id": reader["id"]})
    )
    refused = client.delete(f"/api/roles/{reader['id']}")
    assert refused.status_code == 409 and "assigned" in refused.json()["message"]
    _ok(client.put(f"/api/users/{user['id']}/role", json={"user_role_id": super_admin["id"]}))
    assert _ok(client.delete(f"/api/roles/{reader['id']}")) is True
    assert client.delete(f"/api/roles/{reader['id']}").status_code == 404


def test_api_user_token_is_shown_once_and_works_within_its_role(client: TestClient) -> None:
    reader = _role(client, "Reader", "lists:get_all")
    made = _ok(
        client.post("/api/users/api", json={"username": "bot", "user_role_id": reader["id"]})
    )
    assert made["type"] == "api" and made["status"] == "enabled"
    assert made["user_role"] == {**reader, "permissions": ["lists:get_all"]}
    assert made["user_role_id"] == reader["id"] and made["list_role"] is None
    token = made["password"]
    bot = ("bot", token)
    assert client.get("/api/lists", auth=bot).status_code == 200
    assert client.get("/api/bounces", auth=bot).status_code == 403
    shown = _ok(client.get(f"/api/users/{made['id']}"))
    assert "password" not in shown
    assert all("password" not in u for u in _ok(client.get("/api/users")))


def test_password_user_logs_in_with_its_role(client: TestClient) -> None:
    reader = _role(client, "Reader", "bounces:get")
    body = {
        "username": "ann",
        "password": "ann-password-123",
        "type": "user",
        "user_role_id": reader["id"],
    }
    made = _ok(client.post("/api/users", json=body))
    assert made["type"] == "admin" and made["password_login"] is True
    assert "password" not in made
    ann = ("ann", "ann-password-123")
    assert client.get("/api/bounces", auth=ann).status_code == 200
    assert client.get("/api/users", auth=ann).status_code == 403
    # Bad input: no role, no password, a role that does not exist, list roles.
    for bad in (
        {**body, "username": "b", "user_role_id": None},
        {**body, "username": "b", "password": ""},
        {**body, "username": "b", "user_role_id": 999},
        {**body, "username": "b", "list_role_id": 1},
        {**body, "username": "b", "type": "robot"},
    ):
        assert client.post("/api/users", json=bad).status_code == 400, bad
    assert client.post("/api/users", json=body).status_code == 409


def test_changes_apply_at_once_in_this_process(client: TestClient) -> None:
    role = _role(client, "Reader", "lists:get_all")
    made = _ok(client.post("/api/users/api", json={"username": "bot", "user_role_id": role["id"]}))
    bot = ("bot", made["password"])
    # Remembered by the auth cache, with its permissions.
    assert client.get("/api/lists", auth=bot).status_code == 200
    _ok(client.put(f"/api/roles/users/{role['id']}", json={"permissions": ["bounces:get"]}))
    assert client.get("/api/lists", auth=bot).status_code == 403
    assert client.get("/api/bounces", auth=bot).status_code == 200
    _ok(client.put(f"/api/users/{made['id']}", json={"status": "disabled"}))
    assert client.get("/api/bounces", auth=bot).status_code == 403
    _ok(client.put(f"/api/users/{made['id']}", json={"status": "enabled"}))
    assert client.get("/api/bounces", auth=bot).status_code == 200
    _ok(client.delete(f"/api/users/{made['id']}"))
    assert client.get("/api/bounces", auth=bot).status_code == 403


def test_the_last_super_admin_stays(
    client: TestClient, admin_credentials: tuple[str, str], api_credentials: tuple[str, str]
) -> None:
    users = {u["username"]: u for u in _ok(client.get("/api/users"))}
    admin, robot = users[admin_credentials[0]], users[api_credentials[0]]
    reader = _role(client, "Reader", "lists:get_all")
    # Two Super Admins: one of them may go.
    _ok(client.put(f"/api/users/{admin['id']}/role", json={"user_role_id": reader["id"]}))
    # The caller is now the last Super Admin: it may not delete, disable or demote itself.
    for refused in (
        client.delete(f"/api/users/{robot['id']}"),
        client.put(f"/api/users/{robot['id']}", json={"status": "disabled"}),
        client.put(f"/api/users/{robot['id']}/role", json={"user_role_id": reader["id"]}),
    ):
        assert refused.status_code == 409, refused.text
        assert "last enabled Super Admin" in refused.json()["message"]
    assert client.get("/api/settings").status_code == 200
    # Other changes to it are fine.
    assert client.put(f"/api/users/{robot['id']}", json={"username": "robot2"}).status_code == 200


def test_users_routes_need_users_permissions(client: TestClient) -> None:
    reader = _role(client, "Viewer", "users:get", "roles:get")
    made = _ok(client.post("/api/users/api", json={"username": "v", "user_role_id": reader["id"]}))
    viewer = ("v", made["password"])
    assert client.get("/api/users", auth=viewer).status_code == 200
    assert client.get("/api/roles/users", auth=viewer).status_code == 200
    denied = client.post("/api/users/api", json={"username": "w", "user_role_id": 1}, auth=viewer)
    assert denied.json() == {"message": "permission denied: users:manage required"}
    denied = client.post("/api/roles/users", json={"name": "W"}, auth=viewer)
    assert denied.json() == {"message": "permission denied: roles:manage required"}
    assert client.get("/api/users/999").status_code == 404
