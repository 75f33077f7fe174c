"""POST /api/import/subscribers: listmonk's multipart CSV import, status and logs."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.types import utcnow
from stmails.services import import_jobs
from stmails.services.imports import ImportStatus
from stmails.web.app import create_app

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
    assert (status["total"], status["imported"]) == (4, 2)
    logs = client.get("/api/import/subscribers/logs").json()["data"]
    assert "not-an-address" in logs or "line 4" in logs
    assert "line 5" in logs
    subs = client.get("/api/subscribers", params={"list_id": list_id}).json()["data"]["results"]
    assert sorted((s["email"], s["name"], s["attribs"]) for s in subs) == [
        ("ann@example.org", "Ann", {"city": "Oslo"}),
        # Without overwrite an existing subscriber keeps its name and attributes, and is still
        # subscribed to the lists (as listmonk does).
        ("bob@example.org", "Old Bob", {}),
    ]
    assert {s["lists"][0]["subscription_status"] for s in subs} == {"confirmed"}

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


def _second_process(app: FastAPI, credentials: tuple[str, str]) -> TestClient:
    """Another server process on the same database: a second app with its own memory."""
    other = create_app(app.state.stmails.settings, engine=app.state.stmails.engine)
    test_client = TestClient(other, raise_server_exceptions=False)
    test_client.auth = credentials
    return test_client


def test_status_logs_and_stop_answer_from_any_process(
    app: FastAPI, client: TestClient, api_credentials: tuple[str, str]
) -> None:
    rows = "".join(f"user{n}@example.org,User {n},\n" for n in range(1200))
    assert (
        _upload(client, {"mode": "subscribe"}, "email,name,attributes\n" + rows).status_code == 200
    )
    with _second_process(app, api_credentials) as other:
        status = _wait(other)
        assert (status["status"], status["total"], status["imported"]) == ("finished", 1200, 1200)
        assert (
            "imported 1200 of 1200 rows" in other.get("/api/import/subscribers/logs").json()["data"]
        )
        # Nothing runs now: DELETE from the other process clears the slot for everybody.
        assert other.delete("/api/import/subscribers").json()["data"]["status"] == "none"
    assert client.get("/api/import/subscribers").json()["data"]["status"] == "none"


def test_one_import_at_a_time_across_processes(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    # An import running in some other process holds the slot.
    elsewhere = ImportStatus(name="big.csv", status="importing")
    with session_maker() as session:
        assert import_jobs.claim(session, "other-process", elsewhere)
        session.commit()
    refused = _upload(client, {"mode": "subscribe"}, CSV)
    assert refused.status_code == 409
    assert client.get("/api/import/subscribers").json()["data"]["name"] == "big.csv"

    # A stop asked through this process reaches it at its next chunk.
    assert client.delete("/api/import/subscribers").json()["data"]["status"] == "stopping"
    elsewhere.total = elsewhere.imported = 500
    with session_maker() as session:
        assert import_jobs.save(session, "other-process", elsewhere) is True
        session.commit()
    assert client.get("/api/import/subscribers").json()["data"]["imported"] == 500


def test_an_import_whose_process_died_reads_failed_and_frees_the_slot(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    long_ago = utcnow() - import_jobs.STALE_AFTER - timedelta(seconds=1)
    with session_maker() as session:
        assert import_jobs.claim(session, "dead", ImportStatus(name="x.csv"), now=long_ago)
        session.commit()
    status = client.get("/api/import/subscribers").json()["data"]
    assert status["status"] == "failed"
    assert "interrupted" in client.get("/api/import/subscribers/logs").json()["data"]
    assert _upload(client, {"mode": "subscribe"}, CSV).status_code == 200
    assert _wait(client)["status"] == "finished"
    # The dead process, should it wake up, no longer owns the slot and is told to stop.
    with session_maker() as session:
        assert import_jobs.save(session, "dead", ImportStatus(name="x.csv", total=9)) is True
        session.commit()
    assert client.get("/api/import/subscribers").json()["data"]["total"] == 4
