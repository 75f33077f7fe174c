"""The Verification page over HTTP: one address checked (offline stages) with its verdict and
reasons, escaped; a list uploaded as a job, its progress fragment and the results download;
refused input; the permission."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.services import roles, users

from .test_pages import ORIGIN, sign_in


@pytest.fixture
def signed_in(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, base_url=ORIGIN) as client:
        yield client, sign_in(client)


def check(client: TestClient, token: str, email: str) -> str:
    answer = client.post(
        "/admin/verification",
        data={"csrf_token": token, "email": email, "offline": "1"},
        headers={"Origin": ORIGIN},
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def test_one_address_shows_its_verdict_and_reasons(signed_in: tuple[TestClient, str]) -> None:
    client, token = signed_in
    assert client.get("/admin/verification").status_code == 200
    bad = check(client, token, "not-an-address")
    assert 'data-verdict="invalid"' in bad and "syntax" in bad
    role = check(client, token, "postmaster@gmail.com")
    assert 'data-verdict="risky"' in role and "role" in role
    typo = check(client, token, "someone@gmial.com")
    assert "gmail.com" in typo
    xss = check(client, token, '"<script>alert(1)</script>"@example.com')
    assert "<script>alert" not in xss and "&lt;script&gt;alert(1)&lt;/script&gt;" in xss
    empty = client.post(
        "/admin/verification", data={"csrf_token": token, "email": " "}, headers={"Origin": ORIGIN}
    )
    assert empty.status_code == 400 and "Enter an address" in empty.text


def test_a_list_runs_as_a_job_with_progress_and_results(
    signed_in: tuple[TestClient, str],
) -> None:
    client, token = signed_in
    body = b"email,name\nann@example.com,Ann\nnot-an-address,X\nsales@example.com,S\n"
    started = client.post(
        "/admin/verification/jobs",
        data={"csrf_token": token, "offline": "1"},
        files={"file": ("list.csv", body, "text/csv")},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    job_url = started.headers["location"]
    page = client.get(job_url)
    assert page.status_code == 200 and "Verification of 3 addresses started." in page.text
    deadline = time.monotonic() + 30
    while True:
        fragment = client.get(f"{job_url}/status").text
        status = re.search(r'data-job-status="(\w+)"', fragment)
        assert status
        if status.group(1) == "done":
            break
        assert time.monotonic() < deadline, fragment
        time.sleep(0.1)
    assert "hx-trigger" not in fragment and "3 of 3 addresses checked." in fragment
    download = re.search(r'href="(/api/verify/jobs/[^"]+format=csv)"', fragment)
    assert download
    results = client.get(download.group(1).replace("&amp;", "&"))
    assert results.status_code == 200
    rows = {r["address"]: r["result"] for r in csv.DictReader(io.StringIO(results.text))}
    assert rows["not-an-address"] == "invalid" and rows["sales@example.com"] == "risky"
    assert client.get("/admin/verification/jobs/nonexistent").status_code == 404


def test_uploads_that_cannot_work_are_refused(signed_in: tuple[TestClient, str]) -> None:
    client, token = signed_in
    missing = client.post(
        "/admin/verification/jobs", data={"csrf_token": token}, headers={"Origin": ORIGIN}
    )
    assert missing.status_code == 400 and "Choose a file" in missing.text
    wrong_column = client.post(
        "/admin/verification/jobs",
        data={"csrf_token": token, "column": "mail"},
        files={"file": ("list.csv", b"email\na@example.com\n", "text/csv")},
        headers={"Origin": ORIGIN},
    )
    assert wrong_column.status_code == 400 and "mail" in wrong_column.text


def test_verification_needs_its_permission(
    app: FastAPI, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "Lists", ["lists:get_all"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, base_url=ORIGIN) as client:
        token = sign_in(client, "reader", "reader-password-1")
        assert client.get("/admin/verification").status_code == 403
        refused = client.post(
            "/admin/verification",
            data={"csrf_token": token, "email": "a@example.com"},
            headers={"Origin": ORIGIN},
        )
        assert refused.status_code == 403
