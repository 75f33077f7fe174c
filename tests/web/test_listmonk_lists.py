"""listmonk's list API where stmails used to differ: `status` is active/archived (not the
type), `subscriber_statuses`, the `type`, `optin`, `tag` and `minimal` filters, bulk deletes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .listmonk_client import ListmonkClient, ListmonkError


@pytest.fixture
def lm(client: TestClient, api_credentials: tuple[str, str]) -> ListmonkClient:
    return ListmonkClient(client, *api_credentials)


def _names(page: dict[str, object]) -> list[str]:
    results = page["results"]
    assert isinstance(results, list)
    return [r["name"] for r in results]


def test_status_means_active_or_archived(lm: ListmonkClient) -> None:
    news = lm.post("/api/lists", {"name": "News", "type": "public", "optin": "single"})
    assert news["status"] == "active"
    old = lm.post("/api/lists", {"name": "Old", "type": "private", "status": "archived"})
    assert old["status"] == "archived"
    assert _names(lm.get("/api/lists", status="active")) == ["News"]
    assert _names(lm.get("/api/lists", status="archived")) == ["Old"]
    assert _names(lm.get("/api/lists")) == ["News", "Old"]
    # A type is no status any more; the type has its own filter.
    with pytest.raises(ListmonkError) as refused:
        lm.get("/api/lists", status="public")
    assert refused.value.status == 400 and refused.value.message.startswith("status:")
    assert _names(lm.get("/api/lists", type="private")) == ["Old"]
    # PUT changes the status; a field sent empty keeps its value, as listmonk's update does.
    revived = lm.put(f"/api/lists/{old['id']}", {"name": "Old", "status": "active", "type": ""})
    assert (revived["status"], revived["type"]) == ("active", "private")
    with pytest.raises(ListmonkError) as bad:
        lm.put(f"/api/lists/{old['id']}", {"status": "deleted"})
    assert bad.value.status == 400 and "status" in bad.value.message


def test_type_optin_and_every_tag_filter(lm: ListmonkClient) -> None:
    lm.post("/api/lists", {"name": "A", "type": "public", "optin": "double", "tags": ["x", "y"]})
    lm.post("/api/lists", {"name": "B", "type": "public", "optin": "single", "tags": ["x"]})
    lm.post("/api/lists", {"name": "C", "type": "private", "optin": "double", "tags": ["Y"]})
    assert _names(lm.get("/api/lists", optin="double")) == ["A", "C"]
    assert _names(lm.get("/api/lists", type="public", optin="single")) == ["B"]
    # listmonk's tag filter: a list must carry every tag asked for (any case).
    response = lm.request("GET", "/api/lists", params=[("tag", "x"), ("tag", "Y")])
    assert _names(response.json()["data"]) == ["A"]
    assert _names(lm.get("/api/lists", tag="y")) == ["A", "C"]
    with pytest.raises(ListmonkError) as bad:
        lm.get("/api/lists", optin="triple")
    assert bad.value.status == 400


def test_subscriber_statuses_and_order_by_count(lm: ListmonkClient) -> None:
    small = lm.post("/api/lists", {"name": "Small", "type": "private", "optin": "double"})
    big = lm.post("/api/lists", {"name": "Big", "type": "private", "optin": "single"})
    for n in range(3):
        lm.post("/api/subscribers", {"email": f"s{n}@example.org", "lists": [big["id"]]})
    lm.post("/api/subscribers", {"email": "d@example.org", "lists": [small["id"]]})
    waiting = lm.post("/api/subscribers", {"email": "u@example.org", "lists": [big["id"]]})
    lm.put(
        "/api/subscribers/lists",
        {"ids": [waiting["id"]], "action": "unsubscribe", "target_list_ids": [big["id"]]},
    )
    got = lm.get(f"/api/lists/{big['id']}")
    assert got["subscriber_count"] == 4
    assert got["subscriber_statuses"] == {"confirmed": 3, "unsubscribed": 1}
    assert lm.get(f"/api/lists/{small['id']}")["subscriber_statuses"] == {"unconfirmed": 1}
    ordered = lm.get("/api/lists", order_by="subscriber_count", order="desc")
    assert _names(ordered) == ["Big", "Small"]
    assert ordered["results"][0]["subscriber_statuses"]["confirmed"] == 3


def test_minimal_is_every_list_by_id_without_counts(lm: ListmonkClient) -> None:
    # No list yet: listmonk answers an empty array, not a page.
    assert lm.get("/api/lists", minimal="true", per_page="all") == []
    for n in range(25):
        lm.post("/api/lists", {"name": f"L{n:02}", "status": "archived" if n % 5 else "active"})
    page = lm.get("/api/lists", minimal="true", per_page="all")
    assert page["total"] == page["per_page"] == len(page["results"]) == 25
    assert page["page"] == 1
    assert [r["id"] for r in page["results"]] == sorted(r["id"] for r in page["results"])
    assert "subscriber_count" not in page["results"][0]
    active = lm.get("/api/lists", minimal="1", status="active")
    assert _names(active) == ["L00", "L05", "L10", "L15", "L20"]
    with pytest.raises(ListmonkError):
        lm.get("/api/lists", minimal="perhaps")


def test_bulk_delete_by_ids_by_query_and_all(lm: ListmonkClient) -> None:
    ids = [lm.post("/api/lists", {"name": name})["id"] for name in ("a1", "a2", "b1", "keep")]
    with pytest.raises(ListmonkError) as refused:
        lm.delete("/api/lists")
    assert refused.value.status == 400
    response = lm.request("DELETE", "/api/lists", params=[("id", ids[0]), ("id", ids[1])])
    assert response.json() == {"data": True}
    assert _names(lm.get("/api/lists")) == ["b1", "keep"]
    assert lm.delete("/api/lists", query="B1") is True
    assert _names(lm.get("/api/lists")) == ["keep"]
    assert lm.delete("/api/lists", all="true") is True
    assert lm.get("/api/lists")["total"] == 0


def test_an_archived_list_leaves_the_public_forms(client: TestClient, lm: ListmonkClient) -> None:
    shown = lm.post("/api/lists", {"name": "Shown", "type": "public"})
    hidden = lm.post("/api/lists", {"name": "Hidden", "type": "public", "status": "archived"})
    public = client.get("/api/public/lists", auth=None).json()
    assert [item["uuid"] for item in public] == [shown["uuid"]]
    assert hidden["uuid"] not in client.get("/subscription/form", auth=None).text
