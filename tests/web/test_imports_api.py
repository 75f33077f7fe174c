"""POST /api/import/subscribers: listmonk's multipart CSV import, status and logs."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

CSV = (
    "email,name,attributes\n"
    'ann@example.org,Ann,"{""city"": ""Oslo""}"\n'
    "bob@example.org,Bob,\n"
    "not-an-address,Broken,\n"
    'cat@example.org,Cat,"{not json"\n'
)


def _wait(client: TestClient) -> dict[str, Any]:
    for _ in range(200):
        status = client.get("/api/import/subscribers").json()["data"]
        if status["status"] != "importing":
            return dict(status)
        time.sleep(0.05)
    raise AssertionError("import did not finish")


def _upload(client: TestClient, params: dict[str, Any], text: str) -> Any:
    return client.post(
        "/api/import/subscribers",
        data={"params": json.dumps(params)},
        files={"file": ("subs.csv", text.encode(), "text/csv")},
    )


def test_subscribe_import_with_lists_and_logs(client: TestClient) -> None:
    list_id = client.post("/api/lists", json={"name": "Imported"}).json()["data"]["id"]
    client.post("/api/subscribers", json={"email": "bob@example.org", "name": "Old Bob"})
    params = {"mode": "subscribe", "delim": ",", "lists": [list_id], "overwrite": False}
    started = _upload(client, {**params, "subscription_status": "confirmed"}, CSV)
    assert started.status_code == 200, started.text
    status = _wait(client)
    assert status["status"] == "finished"
    assert (status["total"], status["imported"]) == (4, 1)
    logs = client.get("/api/import/subscribers/logs").json()["data"]
    assert "not-an-address" in logs or "line 4" in logs
    assert "line 5" in logs
    subs = client.get("/api/subscribers", params={"list_id": list_id}).json()["data"]["results"]
    assert [(s["email"], s["attribs"]) for s in subs] == [("ann@example.org", {"city": "Oslo"})]
    assert subs[0]["lists"][0]["subscription_status"] == "confirmed"
    # Without overwrite the existing subscriber is left alone.
    bob = client.get("/api/subscribers", params={"query": "email = 'bob@example.org'"})
    assert bob.json()["data"]["results"][0]["name"] == "Old Bob"

    assert _upload(client, {**params, "overwrite": True}, CSV).status_code == 200
    assert _wait(client)["imported"] == 2
    bob = client.get("/api/subscribers", params={"query": "email = 'bob@example.org'"})
    assert bob.json()["data"]["results"][0]["name"] == "Bob"


def test_blocklist_import(client: TestClient) -> None:
    client.post("/api/subscribers", json={"email": "ann@example.org"})
    text = "email;name\nann@example.org;Ann\nnew@example.org;New\n"
    assert _upload(client, {"mode": "blocklist", "delim": ";"}, text).status_code == 200
    assert _wait(client)["imported"] == 2
    results = client.get("/api/subscribers").json()["data"]["results"]
    assert {s["email"]: s["status"] for s in results} == {
        "ann@example.org": "blocklisted",
        "new@example.org": "blocklisted",
    }


def test_bad_params_are_400(client: TestClient) -> None:
    for params, word in [
        ({"mode": "delete"}, "params.mode"),
        ({"delim": ",,"}, "params.delim"),
        ({"lists": [999]}, "params.lists"),
        ({"overwrite": "yes"}, "params.overwrite"),
    ]:
        response = _upload(client, params, CSV)
        assert response.status_code == 400, (params, response.text)
        assert word in response.json()["message"]
    missing = client.post("/api/import/subscribers", data={"params": "{}"})
    assert missing.status_code == 400
    assert "file" in missing.json()["message"]
    assert client.delete("/api/import/subscribers").json()["data"]["status"] == "none"
