"""POST /webhooks/bounce: listmonk's body, acknowledged only once committed, stored once."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Bounce, Subscriber


def _bounces(session_maker: sessionmaker[Session]) -> list[Bounce]:
    with session_maker() as session:
        return list(session.scalars(select(Bounce).order_by(Bounce.id)))


def test_listmonk_body_with_escaped_meta_is_recorded(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        session.add(Subscriber(email="user1@mail.com", name="U"))
        session.commit()
    body = {
        "email": "user1@mail.com",
        "source": "api",
        "type": "hard",
        "meta": json.dumps({"additional": "info"}),
    }
    response = client.post("/webhooks/bounce", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": True, "duplicate": False}
    [stored] = _bounces(session_maker)
    assert stored.email == "user1@mail.com"
    assert stored.meta == {"additional": "info"}
    assert stored.subscriber_id is not None
    with session_maker() as session:
        # listmonk's default rule: one hard bounce blocklists.
        assert session.scalars(select(Subscriber.status)).one() == "blocklisted"


def test_stmails_fields_are_kept(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    body = {
        "email": "stranger@example.net",
        "source": "mta-log",
        "type": "soft",
        "reason": "mailboxfull",
        "status": "4.2.2",
        "diagnostic": "452 4.2.2 Mailbox full",
        "event_id": "q-123",
        "created_at": "2026-01-02T03:04:05Z",
        "meta": {"queue": "q-123"},
    }
    assert client.post("/webhooks/bounce", json=body).status_code == 200
    [stored] = _bounces(session_maker)
    assert (stored.reason, stored.status, stored.dedup_key) == (
        "mailboxfull",
        "4.2.2",
        "mta-log:q-123",
    )
    assert stored.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert stored.subscriber_id is None


def test_a_duplicate_is_acknowledged_and_stored_once(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    body = {"email": "x@example.org", "source": "ses", "type": "hard", "event_id": "abc"}
    first = client.post("/webhooks/bounce", json=body)
    second = client.post("/webhooks/bounce", json=body)
    assert first.json() == {"data": True, "duplicate": False}
    assert second.json() == {"data": True, "duplicate": True}
    assert len(_bounces(session_maker)) == 1


def test_bad_bodies_are_400_naming_the_field(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    cases = [
        ({"email": "a@b.org", "type": "hard"}, "source"),
        ({"email": "a@b.org", "source": "api", "type": "bogus"}, "type"),
        ({"source": "api", "type": "hard"}, "email"),
        ({"email": "not-an-address", "source": "api", "type": "hard"}, "email"),
        ({"subscriber_uuid": "nope", "source": "api", "type": "hard"}, "subscriber_uuid"),
        ({"email": "a@b.org", "source": "api", "type": "hard", "meta": "{"}, "meta"),
        ({"email": "a@b.org", "source": "api", "type": "hard", "meta": [1]}, "meta"),
        ({"email": "a@b.org", "source": "api", "type": "hard", "created_at": "x"}, "created_at"),
    ]
    for body, field in cases:
        response = client.post("/webhooks/bounce", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(field), response.text
    broken = client.post(
        "/webhooks/bounce", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert "JSON" in broken.json()["message"]
    assert _bounces(session_maker) == []


def test_concurrent_posts_are_each_stored_once(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    import concurrent.futures

    def post(i: int) -> int:
        body = {
            "email": f"u{i % 20}@example.org",
            "source": "api",
            "type": "soft",
            "event_id": str(i),
        }
        return client.post("/webhooks/bounce", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, list(range(60)) + list(range(30))))
    assert statuses == [200] * 90
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Bounce)) == 60
