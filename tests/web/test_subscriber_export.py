"""`GET /api/subscribers/export`: listmonk's CSV columns, the API's filters, formula cells
defused, refused queries before the download, and the permissions."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import lists as list_service
from stmails.services import roles, users
from stmails.services import subscribers as subscriber_service
from stmails.web import subscriber_export


def _seed(session_maker: sessionmaker[Session], count: int) -> int:
    with session_maker() as session:
        mlist = list_service.create(session, name="L")
        for i in range(count):
            subscriber_service.create(
                session,
                email=f"p{i}@example.com",
                name="=HYPERLINK(1)" if i == 0 else f"P {i}",
                attribs={"n": i, "city": "Berlin" if i % 2 else "Paris"},
                list_ids=[mlist.id] if i < 3 else [],
                preconfirm=True,
            )
        session.commit()
        return mlist.id


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_every_match_in_chunks(
    client: TestClient, session_maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    list_id = _seed(session_maker, 7)
    # Small chunks: the export walks the key across several reads.
    monkeypatch.setattr(subscriber_export, "CHUNK", 2)
    answer = client.get("/api/subscribers/export")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = _rows(answer.text)
    assert list(rows[0]) == subscriber_export.HEADER
    assert [r["email"] for r in rows] == [f"p{i}@example.com" for i in range(7)]
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert json.loads(rows[3]["attributes"]) == {"n": 3, "city": "Berlin"}
    on_list = _rows(
        client.get(
            "/api/subscribers/export",
            params={"list_id": list_id, "subscription_status": "confirmed"},
        ).text
    )
    assert [r["email"] for r in on_list] == ["p0@example.com", "p1@example.com", "p2@example.com"]
    queried = client.get(
        "/api/subscribers/export", params={"query": "subscribers.attribs->>'city' = 'Paris'"}
    )
    assert [r["email"] for r in _rows(queried.text)] == [f"p{i}@example.com" for i in (0, 2, 4, 6)]
    searched = _rows(client.get("/api/subscribers/export", params={"search": "P 5"}).text)
    assert [r["email"] for r in searched] == ["p5@example.com"]


def test_export_refuses_bad_input_before_the_download(client: TestClient) -> None:
    bad = client.get("/api/subscribers/export", params={"query": "email = "})
    assert bad.status_code == 400 and "query" in bad.json()["message"]
    status = client.get("/api/subscribers/export", params={"subscription_status": "gone"})
    assert status.status_code == 400


def test_export_needs_get_all_and_sql_query(
    app: FastAPI, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "Reader", ["subscribers:get_all"])
        users.create_api_user(session, "reader", "reader-token-0123456789", role=role)
        lists_only = roles.create(session, "Lists", ["lists:get_all"])
        users.create_api_user(session, "lister", "lister-token-0123456789", role=lists_only)
        session.commit()
    with TestClient(app) as reader:
        reader.auth = ("reader", "reader-token-0123456789")
        assert reader.get("/api/subscribers/export").status_code == 200
        assert reader.get("/api/subscribers/export", params={"query": "id > 0"}).status_code == 403
        reader.auth = ("lister", "lister-token-0123456789")
        assert reader.get("/api/subscribers/export").status_code == 403
