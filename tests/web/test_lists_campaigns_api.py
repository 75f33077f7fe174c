"""Lists and campaigns through listmonk's API shapes."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_list_crud_and_counts(client: TestClient) -> None:
    created = client.post(
        "/api/lists", json={"name": "Test list", "type": "public", "optin": "double", "tags": ["t"]}
    )
    assert created.status_code == 200, created.text
    item = created.json()["data"]
    assert (item["name"], item["type"], item["optin"], item["tags"]) == (
        "Test list",
        "public",
        "double",
        ["t"],
    )
    assert item["subscriber_count"] == 0
    list_id = item["id"]
    client.post("/api/subscribers", json={"email": "a@example.org", "lists": [list_id]})
    assert client.get(f"/api/lists/{list_id}").json()["data"]["subscriber_count"] == 1
    # Form fields are refused (a browser would send them cross-site: issue 11, M6).
    form = client.put(f"/api/lists/{list_id}", data={"name": "modified test list"})
    assert form.status_code == 415
    updated = client.put(
        f"/api/lists/{list_id}", json={"name": "modified test list", "type": "private"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["name"] == "modified test list"
    assert updated.json()["data"]["optin"] == "double"
    client.post("/api/lists", json={"name": "Other", "type": "public"})
    page = client.get("/api/lists", params={"per_page": 1, "query": "MODIFIED"}).json()["data"]
    assert page["total"] == 1
    assert page["results"][0]["id"] == list_id
    by_type = client.get("/api/lists", params={"type": "public"}).json()["data"]
    assert [r["name"] for r in by_type["results"]] == ["Other"]
    by_tag = client.get("/api/lists", params={"tag": "t"}).json()["data"]
    assert [r["id"] for r in by_tag["results"]] == [list_id]
    assert client.delete(f"/api/lists/{list_id}").json() == {"data": True}
    assert client.get(f"/api/lists/{list_id}").status_code == 404
    assert client.delete(f"/api/lists/{list_id}").status_code == 404


def test_list_bad_input(client: TestClient) -> None:
    for body, word in [
        ({"type": "public"}, "name"),
        ({"name": "x", "type": "secret"}, "type"),
        ({"name": "x", "optin": "triple"}, "optin"),
        ({"name": "x", "tags": "t"}, "tags"),
        ({"name": 5}, "name"),
    ]:
        response = client.post("/api/lists", json=body)
        assert response.status_code == 400, (body, response.text)
        assert word in response.json()["message"]


def test_campaign_crud_and_status(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "Default list"}).json()["data"]["id"]
    body = {
        "name": "Test campaign",
        "subject": "Hello, world",
        "lists": [list_id],
        "from_email": "listmonk <noreply@listmonk.yoursite.com>",
        "content_type": "richtext",
        "messenger": "email",
        "type": "regular",
        "tags": ["test"],
        "body": "<p>Hi</p>",
    }
    created = client.post("/api/campaigns", json=body)
    assert created.status_code == 200, created.text
    campaign = created.json()["data"]
    assert campaign["status"] == "draft"
    assert campaign["lists"] == [{"id": list_id, "name": "Default list"}]
    assert campaign["from_email"] == body["from_email"]
    assert campaign["tags"] == ["test"]
    assert set(campaign) >= {"uuid", "views", "clicks", "to_send", "sent", "send_at"}
    cid = campaign["id"]
    updated = client.put(f"/api/campaigns/{cid}", json={"subject": "New subject"})
    assert updated.json()["data"]["subject"] == "New subject"
    assert updated.json()["data"]["name"] == "Test campaign"
    refused = client.put(f"/api/campaigns/{cid}/status", json={"status": "scheduled"})
    assert refused.status_code == 400
    assert "send_at" in refused.json()["message"]
    client.put(f"/api/campaigns/{cid}", json={"send_at": "2030-01-01T10:00:00Z"})
    scheduled = client.put(f"/api/campaigns/{cid}/status", json={"status": "scheduled"})
    assert scheduled.json()["data"]["status"] == "scheduled"
    listed = client.get("/api/campaigns", params={"status": "scheduled"}).json()["data"]
    assert [c["id"] for c in listed["results"]] == [cid]
    assert client.get("/api/campaigns", params={"query": "nothing"}).json()["data"]["total"] == 0
    assert client.delete(f"/api/campaigns/{cid}").json() == {"data": True}
    assert client.get(f"/api/campaigns/{cid}").status_code == 404


def test_campaign_bad_input(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "L"}).json()["data"]["id"]
    for body, status, word in [
        ({"subject": "s", "lists": [list_id]}, 400, "name"),
        ({"name": "n", "lists": [list_id]}, 400, "subject"),
        ({"name": "n", "subject": "s"}, 400, "lists"),
        ({"name": "n", "subject": "s", "lists": [999]}, 404, "lists"),
        ({"name": "n", "subject": "s", "lists": [list_id], "content_type": "x"}, 400, "content"),
        ({"name": "n", "subject": "s", "lists": [list_id], "send_at": "soon"}, 400, "send_at"),
    ]:
        response = client.post("/api/campaigns", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["message"], response.text


def test_a_campaign_counts_its_bounces(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "News"}).json()["data"]["id"]
    made = [
        client.post(
            "/api/campaigns",
            json={"name": name, "subject": "s", "lists": [list_id], "body": "<p>b</p>"},
        ).json()["data"]
        for name in ("bounced", "quiet")
    ]
    for n, kind in enumerate(("hard", "soft", "complaint")):
        posted = client.post(
            "/webhooks/bounce",
            json={
                "email": f"r{n}@example.org",
                "campaign_uuid": made[0]["uuid"],
                "source": "api",
                "type": kind,
            },
        )
        assert posted.status_code == 200, posted.text
    assert client.get(f"/api/campaigns/{made[0]['id']}").json()["data"]["bounces"] == 3
    listed = client.get("/api/campaigns").json()["data"]["results"]
    assert {c["name"]: c["bounces"] for c in listed} == {"bounced": 3, "quiet": 0}
