"""GET/DELETE /api/bounces (filters, ordering, CSV export) and PUT /api/bounces/blocklist."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient


def _bounce(client: TestClient, **fields: str) -> None:
    body = {"source": "api", "type": "soft", **fields}
    response = client.post("/webhooks/bounce", json=body)
    assert response.status_code == 200, response.text


def _seed(client: TestClient) -> dict[str, int]:
    list_id = client.post("/api/lists", json={"name": "L"}).json()["data"]["id"]
    sub = client.post("/api/subscribers", json={"email": "sub@example.org", "lists": [list_id]})
    campaign = client.post(
        "/api/campaigns", json={"name": "Spring", "subject": "s", "lists": [list_id]}
    ).json()["data"]
    _bounce(
        client,
        email="sub@example.org",
        campaign_uuid=campaign["uuid"],
        event_id="1",
        created_at="2026-01-05T10:00:00Z",
    )
    _bounce(
        client,
        email='=HYPERLINK("http://evil")@x.org',
        type="hard",
        source="ses",
        reason="unknown_user",
        event_id="2",
        diagnostic="@SUM(A1:A9) -2+3 \tx",
        created_at="2026-02-05T10:00:00Z",
    )
    _bounce(client, email="third@example.org", type="complaint", event_id="3")
    return {"subscriber": sub.json()["data"]["id"], "campaign": campaign["id"]}


def test_list_with_listmonk_filters_and_shape(client: TestClient) -> None:
    ids = _seed(client)
    page = client.get("/api/bounces", params={"per_page": 2}).json()["data"]
    assert (page["total"], page["per_page"], page["page"]) == (3, 2, 1)
    assert len(page["results"]) == 2
    by_campaign = client.get("/api/bounces", params={"campaign_id": ids["campaign"]}).json()
    [row] = by_campaign["data"]["results"]
    assert row["campaign"] == {"id": ids["campaign"], "name": "Spring"}
    assert row["subscriber_id"] == ids["subscriber"]
    assert row["email"] == "sub@example.org"
    assert set(row) >= {"id", "type", "source", "meta", "created_at", "subscriber_uuid"}
    sources = client.get("/api/bounces", params={"source": "ses"}).json()["data"]["results"]
    assert [r["reason"] for r in sources] == ["unknown_user"]
    hard = client.get("/api/bounces", params={"type": "hard"}).json()["data"]["total"]
    assert hard == 1
    email = client.get("/api/bounces", params={"email": "SUB@example.org"}).json()["data"]
    assert email["total"] == 1
    domain = client.get("/api/bounces", params={"domain": "Example.ORG"}).json()["data"]
    assert sorted(r["email"] for r in domain["results"]) == ["sub@example.org", "third@example.org"]
    dated = client.get("/api/bounces", params={"from": "2026-01-01", "to": "2026-01-31"})
    assert [r["email"] for r in dated.json()["data"]["results"]] == ["sub@example.org"]
    oldest_first = client.get("/api/bounces", params={"order_by": "created_at", "order": "asc"})
    assert oldest_first.json()["data"]["results"][0]["email"] == "sub@example.org"
    for params in ({"order_by": "password"}, {"type": "x"}, {"from": "yesterday"}):
        assert client.get("/api/bounces", params=params).status_code == 400


def test_csv_export_neutralizes_formulas(client: TestClient) -> None:
    _seed(client)
    for response in (
        client.get("/api/bounces", params={"format": "csv"}),
        client.get("/api/bounces", headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 3
        evil = next(r for r in rows if "hyperlink" in r["email"].lower())
        assert evil["email"].startswith("'=")
        assert evil["diagnostic"].startswith("'@")
        for row in rows:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_get_delete_and_delete_many(client: TestClient) -> None:
    _seed(client)
    ids = [r["id"] for r in client.get("/api/bounces").json()["data"]["results"]]
    assert client.get(f"/api/bounces/{ids[0]}").json()["data"]["id"] == ids[0]
    assert client.get("/api/bounces/999999").status_code == 404
    assert client.delete(f"/api/bounces/{ids[0]}").json() == {"data": True}
    assert client.delete(f"/api/bounces/{ids[0]}").status_code == 404
    assert client.delete(f"/api/bounces?id={ids[1]}").json() == {"data": True}
    assert client.get("/api/bounces").json()["data"]["total"] == 1
    assert client.delete("/api/bounces").status_code == 400
    assert client.delete("/api/bounces?all=true").json() == {"data": True}
    assert client.get("/api/bounces").json()["data"]["total"] == 0


def test_blocklist_bounced_subscribers(client: TestClient) -> None:
    ids = _seed(client)
    assert client.put("/api/bounces/blocklist").json() == {"data": True}
    sub = client.get(f"/api/subscribers/{ids['subscriber']}").json()["data"]
    assert sub["status"] == "blocklisted"
    assert {m["subscription_status"] for m in sub["lists"]} == {"unsubscribed"}
