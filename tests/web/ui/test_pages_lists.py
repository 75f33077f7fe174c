"""The Lists pages over HTTP: counts per subscription status, create, edit, delete, refused
input, escaping and permissions."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import MailingList
from stmails.services import lists as list_service
from stmails.services import roles, users
from stmails.services import subscribers as subscriber_service

from .test_pages import ORIGIN, sign_in
from .test_pages_subscribers import XSS


@pytest.fixture
def signed_in(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, base_url=ORIGIN) as client:
        yield client, sign_in(client)


def post(client: TestClient, token: str, path: str, data: dict[str, object]) -> httpx.Response:
    return client.post(
        path, data={"csrf_token": token, **data}, headers={"Origin": ORIGIN}, follow_redirects=False
    )


def cells(html: str, list_id: int) -> list[str]:
    row = re.search(rf'<a href="/admin/lists/{list_id}">.*?</tr>', html, re.S)
    assert row, html
    return re.findall(r'class="counts">(?:<a [^>]+>)?(\d+)', row.group(0))


def test_lists_show_counts_per_status(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    with session_maker() as session:
        news = list_service.create(session, name="News", optin="double", tags=["weekly"])
        other = list_service.create(session, name="Other")
        ids = [
            subscriber_service.create(session, email=f"p{i}@example.com", list_ids=[news.id]).id
            for i in range(4)
        ]
        subscriber_service.manage_lists(session, ids[:1], [news.id], "unsubscribe")
        subscriber_service.manage_lists(session, ids[1:2], [news.id], "add", status="confirmed")
        session.commit()
        news_id, other_id = news.id, other.id
    html = client.get("/admin/lists").text
    # total, confirmed, unconfirmed, unsubscribed
    assert cells(html, news_id) == ["4", "1", "2", "1"]
    assert cells(html, other_id) == ["0", "0", "0", "0"]
    assert "weekly" in html and "double opt-in" in html
    assert client.get("/admin/lists", params={"search": "oth"}).text.count("/admin/lists/") == 1


def test_create_edit_delete(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, token = signed_in
    fields = {"type": "public", "optin": "double", "status": "active", "description": "d"}
    refused = post(client, token, "/admin/lists", {"name": " ", **fields})
    assert refused.status_code == 400 and "Enter a name." in refused.text
    wrong = post(client, token, "/admin/lists", {"name": "N", **fields, "type": "secret"})
    assert wrong.status_code == 400
    with session_maker() as session:
        assert session.query(MailingList).count() == 0
    made = post(client, token, "/admin/lists", {"name": XSS, "tags": "a, b", **fields})
    assert made.status_code == 303
    list_id = int(made.headers["location"].rsplit("/", 1)[1])
    page = client.get(made.headers["location"]).text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    with session_maker() as session:
        mlist = session.get(MailingList, list_id)
        assert mlist is not None
        assert (mlist.name, mlist.type, mlist.optin, mlist.tags) == (
            XSS,
            "public",
            "double",
            ["a", "b"],
        )
    saved = post(
        client,
        token,
        f"/admin/lists/{list_id}",
        {**fields, "name": "Renamed", "status": "archived", "tags": ""},
    )
    assert saved.status_code == 303
    with session_maker() as session:
        mlist = session.get(MailingList, list_id)
        assert mlist is not None and (mlist.name, mlist.status, mlist.tags) == (
            "Renamed",
            "archived",
            [],
        )
    assert post(client, token, f"/admin/lists/{list_id}/delete", {}).status_code == 303
    with session_maker() as session:
        assert session.get(MailingList, list_id) is None
    assert post(client, token, f"/admin/lists/{list_id}/delete", {}).status_code == 404
    assert client.get(f"/admin/lists/{list_id}").status_code == 404


def test_readers_cannot_change_lists(app: FastAPI, session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session:
        list_id = list_service.create(session, name="Kept").id
        role = roles.create(session, "List reader", ["lists:get_all"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, base_url=ORIGIN) as client:
        token = sign_in(client, "reader", "reader-password-1")
        page = client.get("/admin/lists")
        assert page.status_code == 200 and "New list" not in page.text
        assert client.get("/admin/subscribers").status_code == 403
        for path in ("/admin/lists", f"/admin/lists/{list_id}", f"/admin/lists/{list_id}/delete"):
            assert post(client, token, path, {"name": "X"}).status_code == 403, path
    with session_maker() as session:
        kept = session.get(MailingList, list_id)
        assert kept is not None and kept.name == "Kept"


def test_a_public_lists_page_gives_its_sign_up_form_to_copy(
    signed_in: tuple[TestClient, str], session_maker: sessionmaker[Session]
) -> None:
    client, _ = signed_in
    with session_maker() as session:
        public = list_service.create(session, name=f"Public {XSS}", type="public")
        private = list_service.create(session, name="Private", type="private")
        session.commit()
        public_id, public_uuid, private_id = public.id, public.uuid, private.id
    html = client.get(f"/admin/lists/{public_id}").text
    assert "Sign-up form" in html and 'data-copy="Copy"' in html
    # The snippet is shown as text: its markup escaped once more, the list's name twice.
    assert "&lt;form method=&#34;post&#34;" in html
    assert f"value=&#34;{public_uuid}&#34;" in html
    assert "<script>" not in html.split('id="form-heading"')[1]
    assert "/subscription/form" in html
    assert "Sign-up form" not in client.get(f"/admin/lists/{private_id}").text
