"""Issue 11: listmonk's subscriber `query` is bounded: `::` casts count toward the nesting
depth (a long chain was a 500), and the database may spend only a limited time evaluating it
(a costly query is the caller's 400, not a 500 or 503)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber
from stmails.services import subscriber_query


def test_a_long_chain_of_casts_is_a_400_naming_the_depth(client: TestClient) -> None:
    client.post("/api/subscribers", json={"email": "a@example.org", "name": "7"})
    # As many casts as the 4,000-character limit of a query holds.
    deep = "subscribers.name" + "::INT" * 780 + " = 7"
    refused = client.get("/api/subscribers", params={"query": deep})
    assert refused.status_code == 400, refused.text
    assert "nested deeper than" in refused.json()["message"]
    bulk = client.put("/api/subscribers/query/blocklist", json={"query": deep})
    assert bulk.status_code == 400
    jsonpath = "subscribers.attribs" + "->'a'" * 200 + "->>'b' = 'c'"
    assert client.get("/api/subscribers", params={"query": jsonpath}).status_code == 400
    # A few casts and steps are fine.
    shallow = "(subscribers.name::TEXT)::INT = 7 AND subscribers.attribs->'a'->>'b' IS NULL"
    found = client.get("/api/subscribers", params={"query": shallow})
    assert found.status_code == 200, found.text
    assert found.json()["data"]["total"] == 1


@pytest.fixture
def many_subscribers(session_maker: sessionmaker[Session]) -> int:
    rows = [{"email": f"s{i}@example.org", "name": f"name {i}"} for i in range(20_000)]
    with session_maker() as session:
        session.execute(insert(Subscriber), rows)
        session.commit()
    return len(rows)


# A hundred LIKE tests on every one of 20,000 rows: far more than a millisecond anywhere.
COSTLY = " OR ".join(f"subscribers.name LIKE '%{i}x%'" for i in range(100))


def test_a_query_past_its_time_limit_is_a_400_and_changes_nothing(
    client: TestClient,
    session_maker: sessionmaker[Session],
    many_subscribers: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscriber_query, "QUERY_SECONDS", 0.001)
    listed = client.get("/api/subscribers", params={"query": COSTLY})
    assert listed.status_code == 400, listed.text
    assert "took longer than 0.001 seconds" in listed.json()["message"]
    blocked = client.put(
        "/api/subscribers/query/blocklist", json={"query": COSTLY + " OR subscribers.id > 0"}
    )
    assert blocked.status_code == 400, blocked.text
    with session_maker() as session:
        statuses = session.scalars(select(Subscriber.status).distinct()).all()
        assert statuses == ["enabled"]
    # With the normal limit the same query runs, and the connection is healthy again.
    monkeypatch.setattr(subscriber_query, "QUERY_SECONDS", 30.0)
    answered = client.get("/api/subscribers", params={"query": COSTLY})
    assert answered.status_code == 200, answered.text
    assert answered.json()["data"]["total"] == 0
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == many_subscribers
