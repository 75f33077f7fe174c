"""listmonk's per-list roles (`/api/roles/lists`): list roles made and changed through the
API, and what they open and close on every list-scoped route; a caller grants only what it
holds (M1)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .listmonk_client import ListmonkClient, ListmonkError

GET, MANAGE = "list:get", "list:manage"


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def _refused(status: int, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ListmonkError) as refused:
        call(*args, **kwargs)
    assert refused.value.status == status, refused.value
    return refused.value.message


def _user(
    lm: ListmonkClient, client: TestClient, name: str, permissions: list[str], list_role: int | None
) -> ListmonkClient:
    role = lm.post("/api/roles/users", {"name": f"{name}-role", "permissions": permissions})
    made = lm.post(
        "/api/users",
        {"username": name, "type": "api", "user_role_id": role["id"], "list_role_id": list_role},
    )
    assert made["list_role_id"] == list_role
    return ListmonkClient(client, name, made["password"])


def test_list_role_crud(lm: ListmonkClient, client: TestClient) -> None:
    a = lm.post("/api/lists", {"name": "A"})["id"]
    b = lm.post("/api/lists", {"name": "B"})["id"]
    made = lm.post(
        "/api/roles/lists",
        {
            "name": "Editors",
            "lists": [
                {"id": a, "permissions": [GET, MANAGE]},
                {"id": b, "permissions": [GET]},
                {"id": b + 1000, "permissions": []},
            ],
        },
    )
    assert made["name"] == "Editors"
    assert made["lists"] == [
        {"id": a, "name": "A", "permissions": [GET, MANAGE]},
        {"id": b, "name": "B", "permissions": [GET]},
    ]
    assert lm.get("/api/roles/lists") == [made]
    # A user role may have the same name: names are unique per kind.
    lm.post("/api/roles/users", {"name": "Editors", "permissions": []})
    assert "Editors" not in [r["name"] for r in lm.get("/api/roles/lists")[1:]]
    assert all(r["name"] != "Editors" or r["type"] == "user" for r in lm.get("/api/roles/users"))
    changed = lm.put(
        f"/api/roles/lists/{made['id']}",
        {"name": "Writers", "lists": [{"id": b, "permissions": [MANAGE]}]},
    )
    assert changed["name"] == "Writers"
    assert changed["lists"] == [{"id": b, "name": "B", "permissions": [MANAGE]}]
    for bad, word in [
        ({"name": "X", "lists": [{"id": a, "permissions": ["list:delete"]}]}, "list:delete"),
        ({"name": "X", "lists": [{"id": 999999, "permissions": [GET]}]}, "999999"),
        ({"name": "X", "lists": [{"id": "a", "permissions": [GET]}]}, "lists"),
        ({"lists": []}, "name"),
    ]:
        assert word in _refused(400, lm.post, "/api/roles/lists", bad)
    assert "exists" in _refused(409, lm.post, "/api/roles/lists", {"name": "Writers"})
    # A list role is no user role, and the reverse.
    _refused(404, lm.put, f"/api/roles/users/{made['id']}", {"name": "Y"})
    role = lm.post("/api/roles/users", {"name": "R", "permissions": ["bounces:get"]})
    assert "user_role_id" in _refused(
        400, lm.post, "/api/users", {"username": "u", "type": "api", "user_role_id": made["id"]}
    )
    assert "list_role_id" in _refused(
        400,
        lm.post,
        "/api/users",
        {"username": "u", "type": "api", "user_role_id": role["id"], "list_role_id": role["id"]},
    )
    # In use, it cannot go; unused, it can; deleting a list removes its grants.
    user = lm.post(
        "/api/users",
        {"username": "w", "type": "api", "user_role_id": role["id"], "list_role_id": made["id"]},
    )
    assert user["list_role"]["name"] == "Writers"
    _refused(409, lm.delete, f"/api/roles/{made['id']}")
    assert lm.put(f"/api/users/{user['id']}", {"list_role_id": None})["list_role"] is None
    lm.delete(f"/api/lists/{b}")
    assert lm.get("/api/roles/lists")[0]["lists"] == []
    assert lm.delete(f"/api/roles/{made['id']}") is True
    assert lm.get("/api/roles/lists") == []


@pytest.fixture
def world(lm: ListmonkClient) -> dict[str, Any]:
    """Lists A (read and manage), B (read) and C (nothing) for the list role `Scoped`, one
    subscriber on each, one campaign to each."""
    ids = {name: lm.post("/api/lists", {"name": name})["id"] for name in "ABC"}
    for name, list_id in list(ids.items()):
        ids[f"sub{name}"] = lm.post(
            "/api/subscribers", {"email": f"{name.lower()}@example.org", "lists": [list_id]}
        )["id"]
        ids[f"camp{name}"] = lm.post(
            "/api/campaigns", {"name": f"To {name}", "subject": "S", "lists": [list_id]}
        )["id"]
    ids["role"] = lm.post(
        "/api/roles/lists",
        {
            "name": "Scoped",
            "lists": [
                {"id": ids["A"], "permissions": [GET, MANAGE]},
                {"id": ids["B"], "permissions": [GET]},
            ],
        },
    )["id"]
    return ids


def test_a_list_role_scopes_lists_subscribers_and_campaigns(
    lm: ListmonkClient, client: TestClient, world: dict[str, Any]
) -> None:
    w = world
    editor = _user(
        lm,
        client,
        "editor",
        [
            "subscribers:get",
            "subscribers:manage",
            "campaigns:get",
            "campaigns:manage",
            "campaigns:get_analytics",
        ],
        w["role"],
    )
    # Lists: reads A and B, manages A only, makes none.
    assert [r["name"] for r in editor.get("/api/lists")["results"]] == ["A", "B"]
    assert [r["name"] for r in editor.get("/api/lists", minimal="true")["results"]] == ["A", "B"]
    assert editor.get(f"/api/lists/{w['B']}")["name"] == "B"
    _refused(403, editor.get, f"/api/lists/{w['C']}")
    assert editor.put(f"/api/lists/{w['A']}", {"description": "mine"})["description"] == "mine"
    _refused(403, editor.put, f"/api/lists/{w['B']}", {"description": "theirs"})
    _refused(403, editor.delete, f"/api/lists/{w['B']}")
    _refused(403, editor.post, "/api/lists", {"name": "D"})
    # Subscribers: those of A and B.
    found = editor.get("/api/subscribers")
    assert sorted(r["email"] for r in found["results"]) == ["a@example.org", "b@example.org"]
    _refused(403, editor.get, "/api/subscribers", list_id=w["C"])
    assert "none of your lists" in _refused(403, editor.get, f"/api/subscribers/{w['subC']}")
    _refused(403, editor.put, f"/api/subscribers/{w['subC']}/blocklist")
    _refused(403, editor.call, "DELETE", "/api/subscribers", params={"id": w["subC"]})
    # A subscriber on one of its lists and another is shown, the other list masked (listmonk).
    lm.put(
        "/api/subscribers/lists",
        {"ids": [w["subB"]], "action": "add", "target_list_ids": [w["C"]], "status": "confirmed"},
    )
    shown = editor.get(f"/api/subscribers/{w['subB']}")["lists"]
    assert [(item["name"], item.get("restricted", False)) for item in shown] == [
        ("B", False),
        ("*Unknown", True),
    ]
    assert "description" not in shown[1]
    made = editor.post("/api/subscribers", {"email": "new@example.org", "lists": [w["A"]]})
    assert [m["name"] for m in made["lists"]] == ["A"]
    assert "list:manage on list" in _refused(
        403, editor.post, "/api/subscribers", {"email": "x@example.org", "lists": [w["B"]]}
    )
    _refused(
        403,
        editor.put,
        "/api/subscribers/lists",
        {"ids": [w["subA"]], "action": "add", "target_list_ids": [w["C"]], "status": "confirmed"},
    )
    # A bulk action for everyone reaches only the subscribers of its lists.
    editor.post("/api/subscribers/query/delete", {"all": True})
    remaining = lm.get("/api/subscribers")["results"]
    assert [r["email"] for r in remaining] == ["c@example.org"]
    # Campaigns: those to A and B; new ones only to its lists.
    assert sorted(r["name"] for r in editor.get("/api/campaigns")["results"]) == ["To A", "To B"]
    _refused(403, editor.get, f"/api/campaigns/{w['campC']}")
    span = {"from": "2020-01-01", "to": "2099-01-01"}
    assert editor.get("/api/campaigns/analytics/views", id=w["campA"], **span) == []
    _refused(403, editor.get, "/api/campaigns/analytics/views", id=w["campC"], **span)
    _refused(403, editor.put, f"/api/campaigns/{w['campC']}", {"name": "Mine now"})
    _refused(403, editor.post, "/api/campaigns", {"name": "N", "subject": "S", "lists": [w["C"]]})
    assert editor.post("/api/campaigns", {"name": "N", "subject": "S", "lists": [w["B"]]})
    editor.call("DELETE", "/api/campaigns", params={"all": "true"})
    assert [r["name"] for r in lm.get("/api/campaigns")["results"]] == ["To C"]


def test_lists_get_all_lifts_the_scope_and_no_list_role_changes_nothing(
    lm: ListmonkClient, client: TestClient, world: dict[str, Any]
) -> None:
    w = world
    wide = _user(
        lm,
        client,
        "wide",
        ["lists:get_all", "subscribers:get_all", "subscribers:manage", "campaigns:get"],
        w["role"],
    )
    assert len(wide.get("/api/lists")["results"]) == 3
    assert wide.get(f"/api/subscribers/{w['subC']}")["email"] == "c@example.org"
    assert len(wide.get("/api/campaigns")["results"]) == 3
    # Managing is still per list without lists:manage_all.
    _refused(403, wide.put, f"/api/lists/{w['C']}", {"description": "x"})
    # A user without a list role keeps what its user role gives, as before list roles.
    plain = _user(lm, client, "plain", ["subscribers:get_all", "subscribers:manage"], None)
    assert (
        plain.put(
            "/api/subscribers/lists",
            {
                "ids": [w["subA"]],
                "action": "add",
                "target_list_ids": [w["C"]],
                "status": "confirmed",
            },
        )
        is True
    )
    assert len(plain.get("/api/subscribers")["results"]) == 3
    _refused(403, plain.get, "/api/lists")
    # campaigns:get without lists:get_all nor a list role reaches no campaign.
    narrow = _user(lm, client, "narrow", ["campaigns:get"], None)
    assert narrow.get("/api/campaigns")["results"] == []
    _refused(403, narrow.get, f"/api/campaigns/{w['campA']}")


def test_a_caller_grants_only_the_list_access_it_holds(
    lm: ListmonkClient, client: TestClient, world: dict[str, Any]
) -> None:
    w = world
    admin = _user(
        lm,
        client,
        "roles-admin",
        ["roles:manage", "roles:get", "users:manage", "users:get"],
        w["role"],
    )
    # Its own grants it may pass on (read A, read B, manage A)...
    mine = admin.post(
        "/api/roles/lists", {"name": "Sub", "lists": [{"id": w["A"], "permissions": [GET, MANAGE]}]}
    )
    # ... but not manage B, nor anything on C.
    for lists in (
        [{"id": w["B"], "permissions": [MANAGE]}],
        [{"id": w["C"], "permissions": [GET]}],
    ):
        message = _refused(403, admin.post, "/api/roles/lists", {"name": "More", "lists": lists})
        assert message.startswith("permission denied: cannot grant list:")
    assert [r["name"] for r in lm.get("/api/roles/lists")] == ["Scoped", "Sub"]
    # Nor widen a role (its own included), nor change or delete one that grants more.
    _refused(
        403,
        admin.put,
        f"/api/roles/lists/{mine['id']}",
        {"lists": [{"id": w["C"], "permissions": [GET]}]},
    )
    wider = lm.post(
        "/api/roles/lists",
        {"name": "Wider", "lists": [{"id": w["C"], "permissions": [GET, MANAGE]}]},
    )
    _refused(403, admin.put, f"/api/roles/lists/{wider['id']}", {"name": "Renamed"})
    _refused(403, admin.delete, f"/api/roles/{wider['id']}")
    # Nor give a user a list role with more than it holds, nor manage a user who has one.
    reader = lm.post("/api/roles/users", {"name": "Reader", "permissions": []})
    _refused(
        403,
        admin.post,
        "/api/users",
        {"username": "x", "type": "api", "user_role_id": reader["id"], "list_role_id": wider["id"]},
    )
    other = lm.post(
        "/api/users",
        {
            "username": "other",
            "type": "api",
            "user_role_id": reader["id"],
            "list_role_id": wider["id"],
        },
    )
    _refused(403, admin.put, f"/api/users/{other['id']}", {"list_role_id": mine["id"]})
    given = admin.post(
        "/api/users",
        {"username": "y", "type": "api", "user_role_id": reader["id"], "list_role_id": mine["id"]},
    )
    assert given["list_role"]["lists"][0]["permissions"] == [GET, MANAGE]
