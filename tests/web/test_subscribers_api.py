"""Subscribers through listmonk's API shapes: create, get, list/query, update, blocklist,
list memberships, delete, and a subscriber's bounces."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _list(client: TestClient, name: str, optin: str = "single") -> int:
    response = client.post("/api/lists", json={"name": name, "type": "public", "optin": optin})
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["id"])


def _subscriber(client: TestClient, email: str, **extra: Any) -> dict[str, Any]:
    body = {"email": email, "name": extra.pop("name", "Some One"), "status": "enabled", **extra}
    response = client.post("/api/subscribers", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def test_create_and_get_in_listmonk_shape(client: TestClient) -> None:
    default = _list(client, "Default list", optin="double")
    created = _subscriber(
        client,
        "subscriber@domain.com",
        name="The Subscriber",
        lists=[default],
        attribs={"city": "Bengaluru", "projects": 3, "stack": {"languages": ["go", "python"]}},
    )
    assert created["email"] == "subscriber@domain.com"
    assert created["attribs"]["stack"] == {"languages": ["go", "python"]}
    fetched = client.get(f"/api/subscribers/{created['id']}").json()["data"]
    assert set(fetched) >= {"id", "uuid", "email", "name", "attribs", "status", "lists"}
    assert set(fetched) >= {"created_at", "updated_at"}
    [membership] = fetched["lists"]
    assert membership["id"] == default
    assert membership["name"] == "Default list"
    # A double opt-in list starts unconfirmed unless preconfirmed (listmonk's rule).
    assert membership["subscription_status"] == "unconfirmed"


def test_create_refuses_bad_input_naming_the_field(client: TestClient) -> None:
    _subscriber(client, "dup@example.org")
    cases = [
        ({"name": "x"}, 400, "email"),
        ({"email": "not an address"}, 400, "email"),
        ({"email": "a@b.org", "status": "weird"}, 400, "status"),
        ({"email": "a@b.org", "attribs": [1]}, 400, "attribs"),
        ({"email": "a@b.org", "lists": ["x"]}, 400, "lists"),
        ({"email": "DUP@example.org"}, 409, "email"),
        ({"email": "a@b.org", "lists": [999]}, 404, "list"),
    ]
    for body, status, word in cases:
        response = client.post("/api/subscribers", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["message"], response.text


def test_list_paginates_and_filters_by_list_and_query(client: TestClient) -> None:
    oslo = _list(client, "Oslo")
    for i in range(5):
        _subscriber(
            client,
            f"p{i}@example.org",
            name=f"Person {i}",
            attribs={"city": "Oslo" if i % 2 == 0 else "Rome", "age": 20 + i},
            lists=[oslo] if i < 2 else [],
        )
    page = client.get("/api/subscribers", params={"page": 2, "per_page": 2}).json()["data"]
    assert (page["total"], page["page"], page["per_page"]) == (5, 2, 2)
    assert [r["email"] for r in page["results"]] == ["p2@example.org", "p3@example.org"]
    everything = client.get("/api/subscribers", params={"per_page": "all"}).json()["data"]
    assert len(everything["results"]) == 5
    on_list = client.get("/api/subscribers", params={"list_id": oslo}).json()["data"]
    assert [r["email"] for r in on_list["results"]] == ["p0@example.org", "p1@example.org"]
    query = "subscribers.attribs->>'city' = 'Oslo' AND (subscribers.attribs->>'age')::INT > 20"
    found = client.get("/api/subscribers", params={"query": query}).json()["data"]
    assert [r["email"] for r in found["results"]] == ["p2@example.org", "p4@example.org"]
    assert found["query"] == query
    ordered = client.get("/api/subscribers", params={"order_by": "email", "order": "DESC"})
    assert ordered.json()["data"]["results"][0]["email"] == "p4@example.org"


def test_bad_query_and_paging_are_400(client: TestClient) -> None:
    for params, word in [
        ({"query": "subscribers.email = 'x'; DELETE FROM subscribers"}, "unexpected character"),
        ({"query": "password = 'x'"}, "unknown column"),
        ({"page": "0"}, "page"),
        ({"per_page": "lots"}, "per_page"),
        ({"order": "sideways"}, "order"),
        ({"order_by": "password"}, "order_by"),
        ({"list_id": "x"}, "list_id"),
    ]:
        response = client.get("/api/subscribers", params=params)
        assert response.status_code == 400, (params, response.text)
        assert word in response.json()["message"]


def test_put_replaces_patch_merges(client: TestClient) -> None:
    first = _list(client, "A")
    second = _list(client, "B")
    sub = _subscriber(client, "x@example.org", attribs={"a": 1, "b": 2}, lists=[first, second])
    patched = client.patch(f"/api/subscribers/{sub['id']}", json={"attribs": {"b": 3}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attribs"] == {"a": 1, "b": 3}
    assert len(patched.json()["data"]["lists"]) == 2
    put = client.put(
        f"/api/subscribers/{sub['id']}",
        json={"email": "y@example.org", "name": "Y", "status": "enabled", "lists": [second]},
    )
    assert put.status_code == 200, put.text
    data = put.json()["data"]
    assert (data["email"], data["name"], data["attribs"]) == ("y@example.org", "Y", {})
    assert [m["id"] for m in data["lists"]] == [second]
    assert client.put("/api/subscribers/999", json={"email": "z@example.org"}).status_code == 404


def test_blocklist_one_and_many_and_memberships(client: TestClient) -> None:
    target = _list(client, "T")
    a = _subscriber(client, "a@example.org", lists=[target])
    b = _subscriber(client, "b@example.org")
    c = _subscriber(client, "c@example.org")
    body = {"ids": [b["id"], c["id"]], "action": "add", "target_list_ids": [target]}
    assert client.put("/api/subscribers/lists", json=body).status_code == 400  # status missing
    body["status"] = "confirmed"
    assert client.put("/api/subscribers/lists", json=body).json() == {"data": True}
    got = client.get(f"/api/subscribers/{b['id']}").json()["data"]["lists"]
    assert [(m["id"], m["subscription_status"]) for m in got] == [(target, "confirmed")]
    body = {"ids": [b["id"]], "action": "unsubscribe", "target_list_ids": [target]}
    assert client.put("/api/subscribers/lists", json=body).status_code == 200
    got = client.get(f"/api/subscribers/{b['id']}").json()["data"]["lists"]
    assert got[0]["subscription_status"] == "unsubscribed"
    body = {"ids": [c["id"]], "action": "remove", "target_list_ids": [target]}
    assert client.put("/api/subscribers/lists", json=body).status_code == 200
    assert client.get(f"/api/subscribers/{c['id']}").json()["data"]["lists"] == []

    assert client.put(f"/api/subscribers/{a['id']}/blocklist").json() == {"data": True}
    blocked = client.get(f"/api/subscribers/{a['id']}").json()["data"]
    assert blocked["status"] == "blocklisted"
    assert blocked["lists"][0]["subscription_status"] == "unsubscribed"
    assert client.put("/api/subscribers/blocklist", json={"ids": [b["id"], c["id"]]}).json() == {
        "data": True
    }
    statuses = {
        r["email"]: r["status"] for r in client.get("/api/subscribers").json()["data"]["results"]
    }
    assert set(statuses.values()) == {"blocklisted"}
    assert client.put("/api/subscribers/999/blocklist").status_code == 404


def test_query_blocklist_and_query_delete(client: TestClient) -> None:
    _subscriber(client, "keep@example.org")
    _subscriber(client, "drop1@spam.example")
    _subscriber(client, "drop2@spam.example")
    query = {"query": "subscribers.email LIKE '%@spam.example'"}
    assert client.put("/api/subscribers/query/blocklist", json=query).status_code == 200
    results = client.get("/api/subscribers").json()["data"]["results"]
    assert {r["email"]: r["status"] for r in results} == {
        "keep@example.org": "enabled",
        "drop1@spam.example": "blocklisted",
        "drop2@spam.example": "blocklisted",
    }
    assert client.post("/api/subscribers/query/delete", json=query).status_code == 200
    left = client.get("/api/subscribers").json()["data"]["results"]
    assert [r["email"] for r in left] == ["keep@example.org"]
    assert client.put("/api/subscribers/query/blocklist", json={}).status_code == 400


def test_delete_one_and_many(client: TestClient) -> None:
    ids = [_subscriber(client, f"d{i}@example.org")["id"] for i in range(4)]
    assert client.delete(f"/api/subscribers/{ids[0]}").json() == {"data": True}
    assert client.get(f"/api/subscribers/{ids[0]}").status_code == 404
    assert client.delete(f"/api/subscribers/{ids[0]}").status_code == 404
    response = client.delete(f"/api/subscribers?id={ids[1]}&id={ids[2]}")
    assert response.json() == {"data": True}
    left = client.get("/api/subscribers").json()["data"]["results"]
    assert [r["id"] for r in left] == [ids[3]]
    assert client.delete("/api/subscribers").status_code == 400


def test_subscriber_bounces_get_and_delete(client: TestClient) -> None:
    sub = _subscriber(client, "bouncy@example.org")
    for event_id in ("1", "2"):
        body = {
            "subscriber_uuid": sub["uuid"],
            "source": "api",
            "type": "soft",
            "event_id": event_id,
            "meta": {"some": "parameter"},
        }
        assert client.post("/webhooks/bounce", json=body).status_code == 200
    listed = client.get(f"/api/subscribers/{sub['id']}/bounces").json()["data"]
    assert len(listed) == 2
    first = listed[0]
    assert first["subscriber_uuid"] == sub["uuid"]
    assert first["subscriber_id"] == sub["id"]
    assert first["email"] == "bouncy@example.org"
    assert first["meta"] == {"some": "parameter"}
    assert first["campaign"] is None
    assert client.delete(f"/api/subscribers/{sub['id']}/bounces").json() == {"data": True}
    assert client.get(f"/api/subscribers/{sub['id']}/bounces").json() == {"data": []}
    assert client.get("/api/subscribers/999/bounces").status_code == 404
