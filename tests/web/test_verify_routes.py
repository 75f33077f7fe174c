"""The verification API as mounted in the real app: auth, body limits, jobs and shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from stmails.web.app import IMPORT_MAX_BYTES


def _job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stmails-verify-job-")]


def _wait_done(client: TestClient, job_id: str) -> dict[str, Any]:
    give_up = time.monotonic() + 20
    job: dict[str, Any] = {}
    while time.monotonic() < give_up:
        job = client.get(f"/api/verify/jobs/{job_id}").json()["data"]
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_every_verify_route_needs_credentials(client: TestClient) -> None:
    for method, path in (
        ("POST", "/api/verify"),
        ("POST", "/api/verify/jobs"),
        ("GET", "/api/verify/jobs/" + "0" * 32),
        ("GET", "/api/verify/jobs/" + "0" * 32 + "/results"),
    ):
        response = client.request(method, path, json={"email": "a@example.com"}, auth=None)
        assert response.status_code == 401, (method, path)
        assert response.json()["message"] == "authentication required"
    wrong = client.post("/api/verify", json={"email": "a@example.com"}, auth=("robot", "nope"))
    assert wrong.status_code == 403


def test_one_address_is_verified_for_an_authenticated_caller(client: TestClient) -> None:
    risky = client.post("/api/verify", json={"email": "info@mailinator.com", "offline": True})
    assert risky.status_code == 200
    assert risky.json()["data"]["result"] == "risky"
    assert risky.json()["data"]["reasons"] == ["disposable", "role"]
    bad = client.post("/api/verify", json={"email": "jane@@example.com", "offline": True})
    assert (bad.json()["data"]["result"], bad.json()["data"]["reasons"]) == ("invalid", ["syntax"])


def test_a_job_runs_to_completion_and_its_results_download(client: TestClient) -> None:
    emails = ["ann@example.com", "info@example.org", "=cmd@example.com", "broken"]
    created = client.post("/api/verify/jobs", json={"emails": emails, "offline": True})
    assert created.status_code == 202
    done = _wait_done(client, created.json()["data"]["id"])
    assert (done["status"], done["processed"], done["total"]) == ("done", 4, 4)
    assert done["counts"] == {"valid": 2, "risky": 1, "invalid": 1}
    as_json = client.get(f"/api/verify/jobs/{done['id']}/results?format=json").json()["data"]
    assert [(r["address"], r["result"]) for r in as_json] == [
        ("ann@example.com", "valid"),
        ("info@example.org", "risky"),
        ("=cmd@example.com", "valid"),
        ("broken", "invalid"),
    ]
    as_csv = client.get(f"/api/verify/jobs/{done['id']}/results?format=csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.splitlines()
    assert lines[0].startswith("address,result,reasons")
    # A cell that a spreadsheet would run as a formula is neutralized.
    assert lines[3].startswith("'=cmd@example.com,valid")
    assert len(lines) == 5


def test_a_csv_upload_larger_than_the_default_body_cap_is_accepted(client: TestClient) -> None:
    rows = "".join(f"user{i:06d}@example.com\n" for i in range(60_000))
    body = ("email\n" + rows).encode()
    assert 1_048_576 < len(body) < IMPORT_MAX_BYTES
    created = client.post(
        "/api/verify/jobs?offline=true",
        files={"file": ("list.csv", body, "text/csv")},
    )
    assert created.status_code == 202, created.text
    assert created.json()["data"]["total"] == 60_000
    # Everything else keeps the default cap.
    too_big = client.post("/api/verify", content=body, headers={"content-type": "text/plain"})
    assert too_big.status_code == 413


def test_shutdown_stops_the_job_workers(app: FastAPI, api_credentials: tuple[str, str]) -> None:
    before = len(_job_threads())
    with TestClient(app) as client:
        client.auth = api_credentials
        job = client.post("/api/verify/jobs", json={"emails": ["a@example.com"], "offline": True})
        _wait_done(client, job.json()["data"]["id"])
        assert len(_job_threads()) == before + 1
    assert len(_job_threads()) == before
