"""The request examples of listmonk's API documentation, sent as listmonk's docs send them,
get answers of the documented shape."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient


def test_documented_subscriber_flow(client: TestClient, api_credentials: tuple[str, str]) -> None:
    list_id = client.post("/api/lists", json={"name": "Default list", "type": "public",
                                              "optin": "single"}).json()["data"]["id"]  # fmt: skip
    # POST /api/subscribers, the docs' example body.
    created = client.post(
        "/api/subscribers",
        content=(
            '{"email":"subscriber@domain.com","name":"The Subscriber","status":"enabled",'
            f'"lists":[{list_id}],"attribs":{{"city":"Bengaluru","projects":3,'
            '"stack":{"languages":["go","python"]}}}'
        ),
        headers={"Content-Type": "application/json"},
    )
    assert created.status_code == 200
    sub = created.json()["data"]
    assert {"id", "uuid", "email", "name", "attribs", "status", "lists"} <= set(sub)
    client.post("/api/subscribers", json={"email": "test@x.org", "name": "Test Two",
                                          "attribs": {"city": "Bengaluru"}})  # fmt: skip
    # GET /api/subscribers with the docs' query, sent with the token header.
    token = {"Authorization": "token {}:{}".format(*api_credentials)}
    found = client.get(
        "/api/subscribers",
        params={
            "page": "1",
            "per_page": "100",
            "query": "subscribers.name LIKE 'Test%' AND subscribers.attribs->>'city' = 'Bengaluru'",
        },
        headers=token,
    ).json()["data"]
    assert [r["email"] for r in found["results"]] == ["test@x.org"]
    assert (found["page"], found["per_page"], found["total"]) == (1, 100, 1)
    # PUT /api/subscribers/lists, the docs' body.
    done = client.put(
        "/api/subscribers/lists",
        json={"ids": [sub["id"]], "action": "add", "target_list_ids": [list_id],
              "status": "confirmed"},
    )  # fmt: skip
    assert done.json() == {"data": True}
    # PUT /api/subscribers/blocklist, the docs' body; DELETE /api/subscribers?id=..
    assert client.put("/api/subscribers/blocklist", json={"ids": [sub["id"]]}).json() == {
        "data": True
    }
    assert client.delete(f"/api/subscribers?id={sub['id']}").json() == {"data": True}


def test_documented_bounce_webhook_and_listing(client: TestClient) -> None:
    # The webhook example of listmonk's bounce docs, with HTTP Basic from -u.
    client.auth = None
    raw = base64.b64encode(b"robot:robot-token-0123456789").decode()
    response = client.post(
        "/webhooks/bounce",
        content=(
            '{"email": "user1@mail.com", "campaign_uuid": "9f86b50d-5711-41c8-ab03-bc91c43d711b",'
            ' "source": "api", "type": "hard", "meta": "{\\"additional\\": \\"info\\"}"}'
        ),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {raw}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] is True
    listed = client.get(
        "/api/bounces?page=1&per_page=2&source=api&order_by=created_at&order=asc",
        headers={"Authorization": f"Basic {raw}"},
    ).json()["data"]
    assert set(listed) >= {"results", "query", "total", "per_page", "page"}
    [bounce] = listed["results"]
    assert bounce["meta"] == {"additional": "info"}
    assert bounce["email"] == "user1@mail.com"
    # The campaign is unknown here: the uuid is kept, the campaign object is empty.
    assert bounce["campaign"] is None
    assert bounce["campaign_uuid"] == "9f86b50d-5711-41c8-ab03-bc91c43d711b"
