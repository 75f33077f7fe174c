"""The Subscribers pages over HTTP: search, listmonk's query, keyset paging, bulk actions behind
a confirmation, the subscriber page (escaped), create and edit, export, and permissions."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Subscriber, SubscriberList
from stmails.services import lists as list_service
from stmails.services import roles, users
from stmails.services import subscribers as subscriber_service
from stmails.services.hygiene import risk
from stmails.web.admin import subscribers as subscribers_page

from .test_pages import ORIGIN, sign_in

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def signed_in(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, base_url=ORIGIN, raise_server_exceptions=True) as client:
        yield client, sign_in(client)


def post(client: TestClient, token: str, path: str, data: dict[str, object]) -> httpx.Response:
    return client.post(
        path,
        data={"csrf_token": token, **data},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def add(session_maker: sessionmaker[Session], count: int, **extra: object) -> list[int]:
    with session_maker() as session:
        ids = [
            subscriber_service.create(
                session, email=f"person{i}@example.com", name=f"Person {i}", **extra
            ).id
            for i in range(count)
        ]
        session.commit()
    return ids


def emails_on(html: str) -> list[str]:
    return re.findall(r'href="/admin/subscribers/\d+">([^<]+)</a>', html)


def test_listing_searches_queries_and_pages_by_key(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    add(session_maker, subscribers_page.SCREEN + 5)
    first = client.get("/admin/subscribers")
    assert first.status_code == 200
    shown = emails_on(first.text)
    # Newest first, one screen, and the total (cheap without a filter).
    assert len(shown) == subscribers_page.SCREEN
    assert shown[0] == f"person{subscribers_page.SCREEN + 4}@example.com"
    assert f"{subscribers_page.SCREEN + 5} subscribers in all." in first.text
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    rest = emails_on(second.text)
    assert rest == [f"person{i}@example.com" for i in range(4, -1, -1)]
    assert 'rel="next"' not in second.text
    found = client.get("/admin/subscribers", params={"search": "PERSON1"})
    ones = [i for i in range(subscribers_page.SCREEN + 5) if str(i).startswith("1")]
    assert set(emails_on(found.text)) == {f"person{i}@example.com" for i in ones}
    queried = client.get(
        "/admin/subscribers", params={"query": "subscribers.email LIKE 'person3%'"}
    )
    assert sorted(emails_on(queried.text)) == sorted(
        f"person{i}@example.com" for i in (3, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39)
    )
    bad = client.get("/admin/subscribers", params={"query": "email = "})
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text and emails_on(bad.text) == []


def test_values_from_subscribers_are_inert(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    with session_maker() as session:
        mlist = list_service.create(session, name=XSS)
        sub = subscriber_service.create(
            session,
            email="xss@example.com",
            name=XSS,
            attribs={"city": XSS, XSS: 1},
            list_ids=[mlist.id],
        )
        session.commit()
        sub_id = sub.id
    for path in ("/admin/subscribers", f"/admin/subscribers/{sub_id}"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path


def test_bulk_blocklist_asks_first_then_acts(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    ids = add(session_maker, 3)
    asked = post(client, token, "/admin/subscribers/bulk", {"action": "blocklist", "ids": ids[:2]})
    assert asked.status_code == 200
    assert "Blocklist 2 subscribers?" in asked.text
    with session_maker() as session:
        assert {s.status for s in session.scalars(select(Subscriber))} == {"enabled"}
    done = post(
        client,
        token,
        "/admin/subscribers/bulk",
        {"action": "blocklist", "ids": ids[:2], "confirmed": "1", "scope": "selected"},
    )
    assert done.status_code == 303
    with session_maker() as session:
        status = {s.id: s.status for s in session.scalars(select(Subscriber))}
    assert status == {ids[0]: "blocklisted", ids[1]: "blocklisted", ids[2]: "enabled"}
    assert "2 subscribers changed." in client.get(done.headers["location"]).text


def test_bulk_add_to_a_list_for_every_match_and_delete(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    ids = add(session_maker, 12)
    with session_maker() as session:
        target = list_service.create(session, name="Newsletter").id
        session.commit()
    answer = post(
        client,
        token,
        "/admin/subscribers/bulk",
        {
            "action": "add",
            "scope": "all",
            "search": "person1",
            "target_list": target,
            "status": "confirmed",
            "confirmed": "1",
        },
    )
    assert answer.status_code == 303
    with session_maker() as session:
        rows = session.execute(select(SubscriberList.subscriber_id, SubscriberList.status)).all()
    assert sorted(rows) == sorted((i, "confirmed") for i in (ids[1], ids[10], ids[11]))
    # No list for a list action: refused, nothing done.
    no_list = {"action": "remove", "ids": ids[0], "confirmed": "1"}
    refused = post(client, token, "/admin/subscribers/bulk", no_list)
    assert refused.status_code == 303
    assert "Choose a list" in client.get(refused.headers["location"]).text
    post(
        client,
        token,
        "/admin/subscribers/bulk",
        {"action": "delete", "ids": [ids[0], ids[1]], "confirmed": "1"},
    )
    with session_maker() as session:
        assert session.get(Subscriber, ids[0]) is None and session.get(Subscriber, ids[2])


def test_create_edit_and_refuse_bad_input(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    with session_maker() as session:
        first = list_service.create(session, name="First", optin="double").id
        session.commit()
    form = client.get("/admin/subscribers/new")
    assert form.status_code == 200 and 'name="email"' in form.text and "First" in form.text
    bad = post(
        client,
        token,
        "/admin/subscribers/new",
        {"email": "new@example.com", "name": "New", "status": "enabled", "attribs": "[1]"},
    )
    assert bad.status_code == 400 and "must be a JSON object" in bad.text
    created = post(
        client,
        token,
        "/admin/subscribers/new",
        {
            "email": "new@example.com",
            "name": "New",
            "status": "enabled",
            "attribs": '{"city": "Berlin"}',
            "lists": first,
        },
    )
    assert created.status_code == 303
    page = client.get(created.headers["location"])
    assert "The subscriber was created." in page.text and "Berlin" in page.text
    with session_maker() as session:
        sub = subscriber_service.get_by_email(session, "new@example.com")
        assert sub is not None and sub.attribs == {"city": "Berlin"}
        links = subscriber_service.subscriptions(session, [sub.id])[sub.id]
        assert [(s.list.id, s.status) for s in links] == [(first, "unconfirmed")]
        sub_id = sub.id
    twice = post(
        client,
        token,
        "/admin/subscribers/new",
        {"email": "NEW@example.com", "status": "enabled", "attribs": "{}"},
    )
    assert twice.status_code == 400 and "exists" in twice.text
    edited = post(
        client,
        token,
        f"/admin/subscribers/{sub_id}",
        {"email": "new@example.com", "name": "Renamed", "status": "disabled", "attribs": "{}"},
    )
    assert edited.status_code == 303
    with session_maker() as session:
        sub = session.get(Subscriber, sub_id)
        assert sub is not None
        assert (sub.name, sub.status, sub.attribs) == ("Renamed", "disabled", {})
        assert subscriber_service.subscriptions(session, [sub_id])[sub_id] == []
    assert client.get("/admin/subscribers/999999").status_code == 404


def test_export_streams_the_matching_subscribers(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    add(session_maker, 3)
    answer = client.get("/admin/subscribers/export", params={"search": "person2"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["email"] for r in rows] == ["person2@example.com"]
    everyone = list(csv.DictReader(io.StringIO(client.get("/admin/subscribers/export").text)))
    assert len(everyone) == 3
    # Not scored yet: empty risk columns; once scored, the score, level and factors.
    assert {(r["risk_score"], r["risk_level"]) for r in everyone} == {("", "")}
    risk.rescore_all(session_maker)
    scored = list(csv.DictReader(io.StringIO(client.get("/admin/subscribers/export").text)))
    assert {r["risk_level"] for r in scored} == {"low"}
    factors = json.loads(scored[0]["risk_factors"])
    assert int(scored[0]["risk_score"]) == sum(f["points"] for f in factors)
    assert "unverified_180_days" in {f["code"] for f in factors}


def test_actions_need_their_permissions(app: FastAPI, session_maker: sessionmaker[Session]) -> None:
    ids = add(session_maker, 1)
    with session_maker() as session:
        role = roles.create(session, "Reader", ["subscribers:get_all"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, base_url=ORIGIN) as client:
        token = sign_in(client, "reader", "reader-password-1")
        page = client.get("/admin/subscribers")
        assert page.status_code == 200 and "Bulk action" not in page.text
        assert 'name="query"' not in page.text
        assert client.get("/admin/subscribers", params={"query": "id > 0"}).status_code == 403
        for path, data in (
            ("/admin/subscribers/bulk", {"action": "blocklist", "ids": ids[0], "confirmed": "1"}),
            (f"/admin/subscribers/{ids[0]}/delete", {}),
            ("/admin/subscribers/new", {"email": "x@example.com", "status": "enabled"}),
        ):
            answer = post(client, token, path, data)
            assert answer.status_code == 403, path
    with session_maker() as session:
        assert session.get(Subscriber, ids[0]) is not None


def test_pages_have_no_inline_script_or_style(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    sub_id = add(session_maker, 1)[0]
    with session_maker() as session:
        list_id = list_service.create(session, name="L").id
        session.commit()
    for path in (
        "/admin/subscribers",
        f"/admin/subscribers/{sub_id}",
        "/admin/subscribers/new",
        "/admin/subscribers/import",
        "/admin/subscribers/import/status",
        "/admin/lists",
        f"/admin/lists/{list_id}",
        "/admin/verification",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "script-src 'self'" in answer.headers["content-security-policy"], path
        html = answer.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), path


def test_bulk_verify_starts_a_job_of_the_selected_addresses(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    ids = add(session_maker, 3)
    started = post(
        client,
        token,
        "/admin/subscribers/bulk",
        {"action": "verify", "ids": ids[:2], "confirmed": "1"},
    )
    assert started.status_code == 303
    job_page = client.get(started.headers["location"])
    assert job_page.status_code == 200
    assert "Verification of 2 addresses started." in job_page.text
    assert "of 2 addresses checked." in job_page.text


def test_the_subscriber_page_shows_the_risk_score(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    sub_id = add(session_maker, 1)[0]
    assert "data-risk-level" not in client.get(f"/admin/subscribers/{sub_id}").text
    risk.rescore_all(session_maker)
    html = client.get(f"/admin/subscribers/{sub_id}").text
    assert 'data-risk-level="low"' in html and "unverified_180_days" in html
