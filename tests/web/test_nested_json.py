"""Issue 11: JSON nested deeper than MAX_JSON_DEPTH is a 400 wherever it comes in (request
bodies, the bounce webhook's `meta`, import parameters and attribute cells, verification jobs,
suppression uploads), never a 500 from a RecursionError further down."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.db.models import Bounce, Subscriber

from .test_imports_api import _upload, _wait

# Within orjson's 1,024 levels (so it parses) but past what json.dumps or a recursive walk
# survive; and one past orjson's too, for the places that used the standard library.
DEEP = '{"a":' * 1000 + "1" + "}" * 1000
DEEPER = '{"a":' * 3000 + "1" + "}" * 3000
JSON = {"content-type": "application/json"}


def _bad(response: Any, word: str = "deeper than") -> None:
    assert response.status_code == 400, response.text
    assert word in response.json()["message"]


def test_depth_is_measured_without_recursion() -> None:
    assert too_deep(orjson.loads(DEEP))
    assert not too_deep({"a": [{"b": [1, 2]}]})
    nested: list[Any] = []
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert not too_deep(nested) and too_deep([nested])


def test_api_bodies(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    subscriber = '{"email": "a@example.org", "attribs": ' + DEEP + "}"
    _bad(client.post("/api/subscribers", content=subscriber, headers=JSON))
    _bad(client.post("/api/lists", content=DEEPER, headers=JSON), "valid JSON")
    entries = '[{"recipient": "x@example.org", "x": ' + DEEP + "}]"
    _bad(client.put("/api/suppressions", content=entries, headers=JSON))
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_the_bounce_webhook_meta(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    base = '{"email": "a@example.org", "source": "api", "type": "hard", "meta": '
    for meta in (orjson.dumps(DEEPER).decode(), orjson.dumps(DEEP).decode(), DEEP):
        _bad(client.post("/webhooks/bounce", content=base + meta + "}", headers=JSON), "meta")
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Bounce)) == 0
    fine = client.post("/webhooks/bounce", content=base + '{"a": {"b": 1}}}', headers=JSON)
    assert fine.status_code == 200, fine.text


def test_import_params_and_attribute_cells(client: TestClient) -> None:
    refused = client.post(
        "/api/import/subscribers",
        data={"params": DEEPER},
        files={"file": ("s.csv", b"email\na@example.org\n", "text/csv")},
    )
    _bad(refused, "params")
    cell = DEEP.replace('"', '""')
    rows = f'email,name,attributes\ndeep@example.org,D,"{cell}"\nfine@example.org,F,"{{}}"\n'
    started = _upload(client, {"mode": "subscribe", "delim": ","}, rows)
    assert started.status_code == 200, started.text
    status = _wait(client)
    assert status["status"] == "finished", status
    assert status["imported"] == 1 and status["total"] == 2
    log = client.get("/api/import/subscribers/logs").json()["data"]
    assert "deeper than" in log


def test_verification_jobs(client: TestClient) -> None:
    job = '{"emails": ["a@example.org"], "x": ' + DEEP + "}"
    _bad(client.post("/api/verify/jobs", content=job, headers=JSON))
    _bad(client.post("/api/verify/jobs", content=DEEPER, headers=JSON), "not JSON")
