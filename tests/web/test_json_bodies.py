"""Issue 11, M6: the JSON API refuses bodies a browser could send cross-site without asking
(forms, multipart, text/plain, an empty POST) with 415, so cached Basic credentials cannot be
used by another site's form. The routes meant for forms and uploads keep taking them."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber
from stmails.web.body import FORM_ROUTES

from .conftest import ADMIN
from .test_permissions import BROWSER_PREFIXES, PUBLIC, app_routes

JSON_REFUSAL = {"message": "body: must be JSON, sent with Content-Type: application/json"}
# What a cross-site page can send without a CORS preflight.
SIMPLE_BODIES = [
    {"data": {"query": "", "name": "x"}},
    {"files": {"file": ("a.csv", b"email\na@example.org\n")}, "data": {"query": ""}},
    {"content": b'{"query": ""}', "headers": {"content-type": "text/plain"}},
    {"content": b""},
]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def test_every_json_route_refuses_simple_bodies(app: FastAPI) -> None:
    checked = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, template in app_routes(app):
            if method not in WRITES or (method, template) in PUBLIC:
                continue
            # The admin pages take forms under their own CSRF and Origin checks.
            if template.startswith(BROWSER_PREFIXES):
                continue
            if (method, template) in FORM_ROUTES:
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            bodies = SIMPLE_BODIES if method == "POST" else SIMPLE_BODIES[:3]
            for body in bodies:
                answer = client.request(method, path, auth=ADMIN, **body)  # type: ignore[arg-type]
                assert answer.status_code == 415, (method, template, body, answer.text)
                assert answer.json() == JSON_REFUSAL
            checked += 1
    # Sanity: the walk covered the API's writes, the hot bounce webhook included.
    assert checked > 40


def test_a_cross_site_form_cannot_delete_subscribers(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    client.post("/api/subscribers", json={"email": "keep@example.org", "name": "K"})
    # What `<form method=post action=.../api/subscribers/query/delete>` sends, with the
    # browser's cached Basic credentials.
    forged = client.post(
        "/api/subscribers/query/delete",
        data={"query": "subscribers.id > 0"},
        headers={"origin": "https://evil.example"},
        auth=ADMIN,
    )
    assert forged.status_code == 415
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1


def test_json_bodies_and_bodiless_writes_still_work(client: TestClient) -> None:
    made = client.post(
        "/api/lists",
        content=b'{"name": "News"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert made.status_code == 200, made.text
    list_id = made.json()["data"]["id"]
    # A PUT or DELETE cannot be sent cross-site without a preflight: no body, no type is fine.
    subscriber = client.post("/api/subscribers", json={"email": "a@example.org"}).json()["data"]
    assert client.put(f"/api/subscribers/{subscriber['id']}/blocklist").status_code == 200
    assert client.delete(f"/api/lists/{list_id}").status_code == 200
    vendor = client.post(
        "/api/lists", content=b'{"name": "V"}', headers={"content-type": "application/x+json"}
    )
    assert vendor.status_code == 200


def test_the_form_routes_take_forms(client: TestClient) -> None:
    assert ("POST", "/api/import/subscribers") in FORM_ROUTES
    imported = client.post(
        "/api/import/subscribers",
        data={"params": '{"mode": "subscribe", "delim": ",", "lists": []}'},
        files={"file": ("s.csv", b"email,name\nform@example.org,F\n", "text/csv")},
    )
    assert imported.status_code == 200, imported.text
    job = client.post(
        "/api/verify/jobs",
        content=b"email\nx@example.org\n",
        headers={"content-type": "text/csv"},
        params={"offline": "true"},
    )
    assert job.status_code == 202, job.text


def test_form_routes_refuse_a_browsers_cross_site_request(app: FastAPI) -> None:
    """The routes that take forms or uploads cannot refuse non-JSON bodies, so they refuse
    what the browser marks as another site's request; API clients (no such headers) and the
    server's own pages keep working."""
    upload = {"files": {"file": ("a.csv", b"email\na@example.org\n")}}
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in sorted(FORM_ROUTES):
            for headers in (
                {"origin": "https://evil.example"},
                {"referer": "https://evil.example/page"},
                {"origin": "null"},
                {"sec-fetch-site": "cross-site"},
                {"sec-fetch-site": "same-site", "origin": "https://other.testserver"},
            ):
                answer = client.request(method, path, auth=ADMIN, headers=headers, **upload)  # type: ignore[arg-type]
                assert answer.status_code == 403, (path, headers, answer.text)
                assert answer.json() == {"message": "cross-site request refused"}
            # The server's own page (same origin) and a plain API client get past the check
            # (to whatever the route answers for this body: never the cross-site refusal).
            for headers in ({"origin": "http://testserver"}, {}):
                answer = client.request(method, path, auth=ADMIN, headers=headers, **upload)  # type: ignore[arg-type]
                assert answer.status_code != 403, (path, headers, answer.text)
