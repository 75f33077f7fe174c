"""The verification router mounted on a small FastAPI app, over real HTTP semantics."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.asyncresolver
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from stmails.verify import MailDomainResolver, OfflineVerifier, Verifier
from stmails.verify.jobs import JobStore
from stmails.web.api.verify import create_verify_router


def _factory(resolver: dns.asyncresolver.Resolver | None) -> Callable[[bool], Verifier]:
    def build(offline: bool) -> Verifier:
        dns_stage = None if offline or resolver is None else MailDomainResolver(resolver)
        return Verifier(OfflineVerifier(), dns=dns_stage)

    return build


class _Served:
    """A FastAPI app served by a real uvicorn server on 127.0.0.1 (random port), in a thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
            http="h11", ws="none", loop="asyncio",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., httpx.Client]]:
    """Mounts the router on a small app and serves it; returns an HTTP client for it."""
    served: list[_Served] = []

    def make(resolver: dns.asyncresolver.Resolver | None = None, **options: Any) -> httpx.Client:
        app = FastAPI()
        router = create_verify_router(
            tmp_path / "jobs", verifier_factory=_factory(resolver), **options
        )
        app.include_router(router)
        served.append(_Served(app))
        return served[-1].client

    yield make
    for server in served:
        server.stop()


def _wait_done(client: httpx.Client, job_id: str) -> dict[str, Any]:
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        job = client.get(f"/api/verify/jobs/{job_id}").json()["data"]
        if job["status"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_verify_one_offline(make_client: Callable[..., httpx.Client]) -> None:
    client = make_client()
    response = client.post("/api/verify", json={"email": "info@mailinator.com"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["result"] == "risky"
    assert data["reasons"] == ["disposable", "role"]
    bad = client.post("/api/verify", json={"email": "not-an-address"}).json()["data"]
    assert (bad["result"], bad["syntax_valid"]) == ("invalid", False)
    assert client.post("/api/verify", json={"nope": 1}).status_code == 422


def test_verify_one_with_dns_and_a_deadline(
    make_client: Callable[..., httpx.Client], dns_zone: tuple[Any, Any]
) -> None:
    _, resolver = dns_zone
    client = make_client(resolver, deadline=0.3)
    gone = client.post("/api/verify", json={"email": "jane@nullmx.example.net"}).json()["data"]
    assert (gone["result"], gone["reasons"]) == ("invalid", ["null_mx"])
    started = time.perf_counter()
    slow = client.post("/api/verify", json={"email": "jane@silent.example.net", "timeout": 60})
    assert time.perf_counter() - started < 1.5
    assert (slow.json()["data"]["result"], slow.json()["data"]["reasons"]) == (
        "unknown",
        ["timeout"],
    )
    offline = client.post(
        "/api/verify", json={"email": "jane@silent.example.net", "offline": True}
    ).json()["data"]
    assert offline["result"] == "valid" and "dns" not in offline["stages"]


def test_a_json_job_runs_to_completion_and_downloads_as_csv_and_json(
    make_client: Callable[..., httpx.Client], dns_zone: tuple[Any, Any]
) -> None:
    _, resolver = dns_zone
    client = make_client(resolver)
    emails = ["a@mx.example.net", "b@nullmx.example.net", "=x@mx.example.net", "broken"]
    created = client.post("/api/verify/jobs", json={"emails": emails})
    assert created.status_code == 202
    job = created.json()["data"]
    assert (job["status"], job["total"]) == ("queued", 4)
    done = _wait_done(client, job["id"])
    assert (done["status"], done["processed"], done["progress"]) == ("done", 4, 1.0)
    assert done["counts"] == {"valid": 2, "invalid": 2}
    as_json = client.get(f"/api/verify/jobs/{job['id']}/results?format=json").json()["data"]
    assert [r["address"] for r in as_json] == emails
    assert as_json[1]["reasons"] == ["null_mx"]
    as_csv = client.get(f"/api/verify/jobs/{job['id']}/results", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.splitlines()
    assert lines[0].startswith("address,result,reasons")
    assert lines[3].startswith("'=x@mx.example.net,valid")
    assert len(lines) == 5


def test_csv_uploads_as_body_and_multipart(make_client: Callable[..., httpx.Client]) -> None:
    client = make_client()
    csv_text = "name,email\nA,a@example.com\nB,info@example.com\n"
    raw = client.post(
        "/api/verify/jobs", content=csv_text.encode(), headers={"content-type": "text/csv"}
    )
    assert raw.status_code == 202
    upload = client.post(
        "/api/verify/jobs",
        files={"file": ("list.csv", csv_text.encode(), "text/csv")},
        data={"offline": "true"},
    )
    assert upload.status_code == 202
    for job in (raw.json()["data"], upload.json()["data"]):
        done = _wait_done(client, job["id"])
        assert done["counts"] == {"valid": 1, "risky": 1}


def test_bad_requests_get_clear_errors(make_client: Callable[..., httpx.Client]) -> None:
    client = make_client(max_upload_bytes=1000, max_job_addresses=3)
    assert (
        client.post(
            "/api/verify/jobs", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert client.post("/api/verify/jobs", json={"emails": [1, 2]}).status_code == 400
    assert client.post("/api/verify/jobs", json=["a@b.co"] * 4).status_code == 413
    too_big = client.post("/api/verify/jobs", json=["x" * 50] * 30)
    assert too_big.status_code == 413
    assert "message" in too_big.json()
    xml = client.post(
        "/api/verify/jobs", content=b"<x/>", headers={"content-type": "application/xml"}
    )
    assert xml.status_code == 415
    assert client.get("/api/verify/jobs/../../etc").status_code == 404
    assert client.get("/api/verify/jobs/" + "0" * 32).status_code == 404
    job = client.post("/api/verify/jobs", json=["a@example.com"]).json()["data"]
    _wait_done(client, job["id"])
    assert client.get(f"/api/verify/jobs/{job['id']}/results?format=xml").status_code == 400


def test_an_interrupted_job_resumes_after_a_restart(
    tmp_path: Path, make_client: Callable[..., httpx.Client]
) -> None:
    # A job that a previous process left half done, with a torn last line.
    store = JobStore(tmp_path / "jobs")
    emails = [f"user{i}@example.com" for i in range(10)] + ["info@example.com"]
    job = store.create(emails, offline=True)
    first = OfflineVerifier().verify(emails[0]).to_dict()
    store.results_path(job.id).write_text(json.dumps(first) + "\n" + '{"address": "us')
    store.save(dataclasses.replace(job, status="running", processed=1))

    client = make_client()
    done = _wait_done(client, job.id)
    results = client.get(f"/api/verify/jobs/{job.id}/results").json()["data"]
    assert done["processed"] == 11
    assert done["counts"] == {"valid": 10, "risky": 1}
    assert [r["address"] for r in results] == emails


class _Exploding(OfflineVerifier):
    """Fails on one address, to show that a failing job does not take its worker down."""

    def verify(self, address: str) -> Any:
        if address == "boom@example.com":
            raise RuntimeError("verifier bug")
        return super().verify(address)


def test_a_failing_job_is_marked_failed_and_the_next_job_still_runs(tmp_path: Path) -> None:
    app = FastAPI()
    router = create_verify_router(
        tmp_path / "jobs", verifier_factory=lambda offline: Verifier(_Exploding())
    )
    app.include_router(router)
    served = _Served(app)
    try:
        client = served.client
        bad = client.post("/api/verify/jobs", json=["a@example.com", "boom@example.com"])
        failed = _wait_done(client, bad.json()["data"]["id"])
        assert failed["status"] == "failed"
        assert "verifier bug" in failed["error"]
        good = client.post("/api/verify/jobs", json=["a@example.com"])
        assert _wait_done(client, good.json()["data"]["id"])["status"] == "done"
    finally:
        served.stop()


def test_a_job_is_claimed_by_one_runner_at_a_time(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job = store.create(["a@example.com"], offline=True)
    # The second claim opens the lock file again, as another server process would.
    with store.claim(job.id) as first, JobStore(tmp_path).claim(job.id) as second:
        assert (first, second) == (True, False)
    with store.claim(job.id) as again:
        assert again


def test_the_api_answers_413_and_429(make_client: Callable[..., httpx.Client]) -> None:
    client = make_client(max_job_addresses=3, max_open_jobs=1, job_workers=1)
    csv_type = {"content-type": "text/csv"}
    too_many = client.post(
        "/api/verify/jobs", content=b"email\n" + b"x@example.org\n" * 4, headers=csv_type
    )
    assert too_many.status_code == 413
    assert "at most 3 addresses" in too_many.json()["message"]
    # Issue 11: quotas. A JSON list is refused over the limit too.
    listed = json.dumps(["a@example.org"] * 4)
    as_json = client.post(
        "/api/verify/jobs", content=listed, headers={"content-type": "application/json"}
    )
    assert as_json.status_code == 413
    made = client.post(
        "/api/verify/jobs?offline=true", content=b"email\na@example.org\n", headers=csv_type
    )
    assert made.status_code == 202, made.text
    job_id = made.json()["data"]["id"]
    # While it is open, no other job is accepted (unless it already finished).
    second = client.post("/api/verify/jobs", content=b"email\nb@example.org\n", headers=csv_type)
    if second.status_code != 202:
        assert second.status_code == 429 and second.headers["retry-after"]
    assert _wait_done(client, job_id)["status"] == "done"
    if second.status_code == 202:
        # The first had finished already: the second is the open job now; let it finish too.
        assert _wait_done(client, second.json()["data"]["id"])["status"] == "done"
    broken = client.post(
        "/api/verify/jobs", content=b'email\n"' + b"x" * 200_000 + b"\n", headers=csv_type
    )
    assert broken.status_code in (400, 202), broken.text
    assert broken.status_code != 500
