"""listmonk's users API where stmails used to differ: `name` and `email`, API users made with
`POST /api/users` (`type: api`), roles changed with `PUT /api/users/{id}`, bulk deletes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def test_users_keep_name_and_email(lm: ListmonkClient) -> None:
    editor = lm.post("/api/roles/users", {"name": "Editor", "permissions": ["lists:get_all"]})
    made = lm.post(
        "/api/users",
        {"username": "ann", "password": "ann-password-1", "type": "user", "status": "enabled",
         "name": "Ann Example", "email": "Ann@Example.ORG", "user_role_id": editor["id"]},
    )  # fmt: skip
    assert (made["name"], made["email"]) == ("Ann Example", "Ann@example.org")
    assert made["twofa_type"] == "none"
    got = lm.get(f"/api/users/{made['id']}")
    assert (got["name"], got["email"]) == ("Ann Example", "Ann@example.org")
    # listmonk's edit form sends every field; empty ones keep their values.
    changed = lm.put(
        f"/api/users/{made['id']}",
        {"username": "ann", "name": "Ann E.", "email": "ann@example.net", "password": "",
         "type": "user", "status": "enabled", "user_role_id": editor["id"]},
    )  # fmt: skip
    assert (changed["name"], changed["email"]) == ("Ann E.", "ann@example.net")
    kept = lm.put(f"/api/users/{made['id']}", {"name": "", "email": ""})
    assert (kept["name"], kept["email"]) == ("Ann E.", "ann@example.net")
    with pytest.raises(ListmonkError) as bad:
        lm.put(f"/api/users/{made['id']}", {"name": "Nobody", "email": "not an address"})
    assert bad.value.status == 400 and bad.value.message.startswith("email")
    assert lm.get(f"/api/users/{made['id']}")["name"] == "Ann E."
    # A user made without a name is shown by its username, as listmonk does.
    bare = lm.post("/api/users", {"username": "bob", "password": "bob-password-1",
                                  "user_role_id": editor["id"]})  # fmt: skip
    assert (bare["name"], bare["email"]) == ("bob", None)


def test_api_users_from_post_users_and_roles_from_put_users(
    client: TestClient, lm: ListmonkClient
) -> None:
    reader = lm.post("/api/roles/users", {"name": "Reader", "permissions": ["bounces:get"]})
    lister = lm.post("/api/roles/users", {"name": "Lister", "permissions": ["lists:get_all"]})
    made = lm.post(
        "/api/users",
        {"username": "robot2", "type": "api", "status": "enabled", "name": "The robot",
         "email": "ignored@example.org", "user_role_id": reader["id"]},
    )  # fmt: skip
    assert made["type"] == "api" and made["email"] is None and made["name"] == "The robot"
    token = made["password"]
    assert token and "password" not in lm.get(f"/api/users/{made['id']}")
    robot = ListmonkClient(client, "robot2", token, scheme="token")
    assert robot.login() is True
    assert robot.get("/api/bounces")["total"] == 0
    with pytest.raises(ListmonkError) as refused:
        robot.get("/api/lists")
    assert refused.value.status == 403
    # listmonk changes a role with PUT /api/users/{id}.
    changed = lm.put(f"/api/users/{made['id']}", {"user_role_id": lister["id"]})
    assert changed["user_role"]["name"] == "Lister"
    assert robot.get("/api/lists")["total"] == 0


def test_bulk_delete_is_all_or_nothing(lm: ListmonkClient) -> None:
    role = lm.post("/api/roles/users", {"name": "R", "permissions": ["bounces:get"]})
    ids = [
        lm.post("/api/users", {"username": f"u{n}", "type": "api", "user_role_id": role["id"]})[
            "id"
        ]
        for n in range(3)
    ]
    response = lm.request("DELETE", "/api/users", params=[("id", ids[0]), ("id", ids[1])])
    assert response.json() == {"data": True}
    remaining = {u["username"] for u in lm.get("/api/users")}
    assert "u0" not in remaining and "u1" not in remaining and "u2" in remaining
    # The last Super Admins cannot all go: nothing is deleted then.
    admins = [u["id"] for u in lm.get("/api/users") if u["user_role"]["name"] == "Super Admin"]
    params = [("id", i) for i in [ids[2], *admins]]
    refused = lm.request("DELETE", "/api/users", params=params)
    assert refused.status_code == 409
    assert "u2" in {u["username"] for u in lm.get("/api/users")}
    with pytest.raises(ListmonkError) as empty:
        lm.delete("/api/users")
    assert empty.value.status == 400
