"""The import page over HTTP: a CSV upload with listmonk's options runs the background import;
the status fragment (polled by htmx) shows progress and the log; bad uploads are refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber
from stmails.services import lists as list_service
from stmails.services import subscribers as subscriber_service

from .test_pages import ORIGIN, sign_in
from .test_pages_subscribers import XSS


@pytest.fixture
def signed_in(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, base_url=ORIGIN) as client:
        yield client, sign_in(client)


def finished(client: TestClient) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        fragment = client.get("/admin/subscribers/import/status").text
        state = re.search(r'data-import-status="(\w+)"', fragment)
        if state and state.group(1) not in ("importing", "stopping"):
            assert "hx-trigger" not in fragment
            return fragment
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def test_upload_imports_onto_lists_and_shows_the_log(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    with session_maker() as session:
        list_id = list_service.create(session, name="Imported").id
        session.commit()
    page = client.get("/admin/subscribers/import")
    assert page.status_code == 200 and "No import yet." in page.text
    body = (
        "email,name,attributes\n"
        'ann@example.com,Ann,"{""city"": ""Berlin""}"\n'
        f'bob@example.com,"{XSS.replace(chr(34), chr(34) * 2)}",{{}}\n'
        "not-an-address,Nobody,{}\n"
    )
    answer = client.post(
        "/admin/subscribers/import",
        data={
            "csrf_token": token,
            "mode": "subscribe",
            "lists": str(list_id),
            "subscription_status": "confirmed",
            "delim": ",",
        },
        files={"file": ("people.csv", body.encode(), "text/csv")},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    fragment = finished(client)
    assert 'data-import-status="finished"' in fragment
    assert "2 of 3 rows imported." in fragment
    assert "people.csv" in fragment and "line 4: email:" in fragment
    with session_maker() as session:
        emails = set(session.scalars(select(Subscriber.email)))
        assert emails == {"ann@example.com", "bob@example.com"}
        ann = subscriber_service.get_by_email(session, "ann@example.com")
        assert ann is not None and ann.attribs == {"city": "Berlin"}
        links = subscriber_service.subscriptions(session, [ann.id])[ann.id]
        assert [(s.list.id, s.status) for s in links] == [(list_id, "confirmed")]
    # The subscribers page shows the imported name inert.
    listing = client.get("/admin/subscribers").text
    assert "<script>alert" not in listing and "&lt;script&gt;" in listing
    # Clearing the finished import.
    cleared = client.post(
        "/admin/subscribers/import/stop",
        data={"csrf_token": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert cleared.status_code == 303
    assert "No import yet." in client.get("/admin/subscribers/import").text


def test_bad_uploads_are_refused_and_nothing_starts(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    no_file = client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "mode": "subscribe", "subscription_status": "confirmed"},
        headers={"Origin": ORIGIN},
    )
    assert no_file.status_code == 400 and "Choose a CSV file" in no_file.text
    unknown_list = client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "mode": "subscribe", "lists": "999", "delim": ","},
        files={"file": ("a.csv", b"email,name\nx@example.com,X\n", "text/csv")},
        headers={"Origin": ORIGIN},
    )
    assert unknown_list.status_code == 400 and "unknown list id" in unknown_list.text
    bad_mode = client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "mode": "erase", "delim": ","},
        files={"file": ("a.csv", b"email,name\nx@example.com,X\n", "text/csv")},
        headers={"Origin": ORIGIN},
    )
    assert bad_mode.status_code == 400 and "params.mode" in bad_mode.text
    assert "No import yet." in client.get("/admin/subscribers/import").text
    with session_maker() as session:
        assert session.scalars(select(Subscriber)).first() is None
