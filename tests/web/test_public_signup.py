"""The public sign-up over HTTP against the real app, a real aiosmtpd sink and the test database:
listmonk's public API and hosted form, double opt-in by mail, forged links, rate limits, the
honeypot, the ALTCHA captcha (and its replay), the domain lists and verification at sign-up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import altcha
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import Sink
from stmails.db.models import MailingList, RateEvent, Subscriber, SubscriberList
from web.conftest import API


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, base_url="http://testserver") as c:
        c.auth = API
        yield c


def make_lists(session_maker: sessionmaker[Session]) -> dict[str, MailingList]:
    with session_maker() as session:
        made = {
            "news": MailingList(name="News", type="public", optin="double"),
            "offers": MailingList(name="Offers", type="public", optin="single"),
            "staff": MailingList(name="Staff", type="private", optin="single"),
        }
        session.add_all(made.values())
        session.commit()
        for item in made.values():
            session.refresh(item)
            session.expunge(item)
    return made


def configure(client: TestClient, sink: Sink, **extra: Any) -> None:
    response = client.put(
        "/api/settings",
        json={"smtp": sink.smtp_settings(), "privacy.record_optin_ip": True, **extra},
    )
    assert response.status_code == 200, response.text


def optin_link(sink: Sink, address: str) -> str:
    captured = sink.handler.by_recipient(address)
    assert captured, f"no mail to {address}"
    body = captured[-1].message.get_body(("html",))
    assert body is not None
    found = re.search(r'href="http://[^/]+(/subscription/optin/[^"]+)"', body.get_content())
    assert found is not None
    return found.group(1).replace("&amp;", "&")


def subscriber(session_maker: sessionmaker[Session], address: str) -> Subscriber | None:
    with session_maker() as session:
        found = session.scalar(select(Subscriber).where(Subscriber.email == address))
        if found is not None:
            session.expunge(found)
        return found


def statuses(session_maker: sessionmaker[Session], address: str) -> dict[int, str]:
    with session_maker() as session:
        rows = session.execute(
            select(SubscriberList.list_id, SubscriberList.status)
            .join(Subscriber, Subscriber.id == SubscriberList.subscriber_id)
            .where(Subscriber.email == address)
        )
        return {int(a): str(b) for a, b in rows}


def test_public_lists_shows_only_public_lists(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    lists = make_lists(session_maker)
    client.auth = None
    answer = client.get("/api/public/lists")
    assert answer.status_code == 200
    # listmonk's answer is a bare array (no envelope).
    assert answer.json() == [
        {"uuid": lists["news"].uuid, "name": "News"},
        {"uuid": lists["offers"].uuid, "name": "Offers"},
    ]


def test_double_optin_by_mail_confirms_and_records_ip(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink)
    client.auth = None
    answer = client.post(
        "/api/public/subscription",
        json={
            "email": "Jane@Example.org",
            "name": "Jane",
            "list_uuids": [lists["news"].uuid, lists["offers"].uuid, lists["staff"].uuid],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"has_optin": True}}
    jane = subscriber(session_maker, "Jane@example.org")
    assert jane is not None and jane.name == "Jane"
    # The private list is not offered; the single opt-in list is confirmed at once.
    assert statuses(session_maker, "Jane@example.org") == {
        lists["news"].id: "unconfirmed",
        lists["offers"].id: "confirmed",
    }
    mail = smtp_sink.handler.by_recipient("Jane@example.org")[0].message
    assert mail["X-Stmails-Subscriber"] == jane.uuid
    assert "News" in mail.get_body(("html",)).get_content()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = optin_link(smtp_sink, "Jane@example.org")
    page = client.get(link)
    assert page.status_code == 200 and "News" in page.text
    # Following the link (a GET, as a mail scanner would) confirms nothing.
    assert statuses(session_maker, "Jane@example.org")[lists["news"].id] == "unconfirmed"
    token = re.search(r"t=([^&]+)", link)
    assert token is not None
    done = client.post(
        link.split("?")[0],
        data={"t": token.group(1), "l": lists["news"].uuid},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert done.status_code == 200 and "News" in done.text
    assert statuses(session_maker, "Jane@example.org")[lists["news"].id] == "confirmed"
    with session_maker() as session:
        row = session.get(SubscriberList, (jane.id, lists["news"].id))
        assert row is not None and row.meta["optin_ip"] == "testclient"
        assert "optin_at" in row.meta


def test_existing_address_gets_the_same_answer_and_keeps_its_name(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink)
    client.auth = None
    body = {"email": "amy@example.org", "name": "Amy", "list_uuids": [lists["offers"].uuid]}
    first = client.post("/api/public/subscription", json=body)
    again = client.post("/api/public/subscription", json={**body, "name": "Mallory was here"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    found = subscriber(session_maker, "amy@example.org")
    assert found is not None and found.name == "Amy"


def test_forged_and_unknown_links_do_nothing_and_look_alike(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink)
    client.auth = None
    client.post(
        "/api/public/subscription",
        json={"email": "bob@example.org", "list_uuids": [lists["news"].uuid]},
    )
    bob = subscriber(session_maker, "bob@example.org")
    assert bob is not None
    forged = client.post(f"/subscription/optin/{bob.uuid}", data={"t": "x" * 32})
    unknown = client.post(
        "/subscription/optin/00000000-0000-4000-8000-000000000000", data={"t": "x" * 32}
    )
    assert forged.status_code == unknown.status_code == 404
    assert forged.text == unknown.text
    # A campaign uuid is no key for a subscriber it never went to; a bare uuid is none either.
    for key in ("00000000-0000-0000-0000-000000000000", bob.uuid, ""):
        answer = client.post(f"/subscription/{key or 'x'}/{bob.uuid}", data={"scope": "all"})
        assert answer.status_code == 404 and answer.text == unknown.text
    assert statuses(session_maker, "bob@example.org") == {lists["news"].id: "unconfirmed"}


def test_confirmation_mail_is_rate_limited_per_address(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink)
    client.auth = None
    body = {"email": "victim@example.org", "list_uuids": [lists["news"].uuid]}
    for n in range(4):
        answer = client.post(
            "/api/public/subscription", json=body, headers={"X-Forwarded-For": f"192.0.2.{n}"}
        )
        assert answer.status_code == 200
    # One mail per interval (10 minutes by default), whoever asks.
    assert len(smtp_sink.handler.by_recipient("victim@example.org")) == 1


def test_sign_ups_are_rate_limited_per_client_and_per_address(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(
        client,
        smtp_sink,
        **{"public.signup_ip_hourly_max": 2, "public.signup_address_hourly_max": 2},
    )
    client.auth = None
    uuids = [lists["offers"].uuid]
    for n in range(2):
        ok = client.post(
            "/api/public/subscription", json={"email": f"p{n}@example.org", "list_uuids": uuids}
        )
        assert ok.status_code == 200
    over = client.post(
        "/api/public/subscription", json={"email": "p9@example.org", "list_uuids": uuids}
    )
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert subscriber(session_maker, "p9@example.org") is None
    with session_maker() as session:
        events = len(session.scalars(select(RateEvent)).all())
    assert events == 4  # two per accepted sign-up (client, address); none for the refused one


def test_honeypot_answers_like_success_and_stores_nothing(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink)
    client.auth = None
    answer = client.post(
        "/subscription/form",
        data={"email": "bot@example.org", "l": lists["news"].uuid, "nonce": "filled"},
    )
    assert answer.status_code == 200 and "Thank you" in answer.text
    assert subscriber(session_maker, "bot@example.org") is None
    assert smtp_sink.handler.messages == []


def test_captcha_is_required_single_use_and_expiring(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(
        client, smtp_sink, **{"security.captcha": {"altcha": {"enabled": True, "complexity": 2000}}}
    )
    client.auth = None
    body = {"email": "c1@example.org", "list_uuids": [lists["offers"].uuid]}
    refused = client.post("/api/public/subscription", json=body)
    assert refused.status_code == 400 and "JavaScript" in refused.json()["message"]
    challenge = client.get("/api/public/captcha").json()
    solution = altcha.solve_challenge_v1(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxNumber"]
    )
    assert solution is not None
    payload = altcha.PayloadV1(
        challenge["algorithm"],
        challenge["challenge"],
        solution.number,
        challenge["salt"],
        challenge["signature"],
    ).to_base64()
    ok = client.post("/api/public/subscription", json={**body, "altcha": payload})
    assert ok.status_code == 200, ok.text
    replay = client.post(
        "/api/public/subscription",
        json={"email": "c2@example.org", "list_uuids": body["list_uuids"], "altcha": payload},
    )
    assert replay.status_code == 400 and "already used" in replay.json()["message"]
    assert subscriber(session_maker, "c2@example.org") is None
    forged = altcha.PayloadV1(
        challenge["algorithm"],
        challenge["challenge"],
        solution.number + 1,
        challenge["salt"],
        challenge["signature"],
    ).to_base64()
    assert (
        client.post("/api/public/subscription", json={**body, "altcha": forged}).status_code == 400
    )


def test_domain_blocklist_and_allowlist(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink, **{"privacy.domain_blocklist": ["*.spam.example", "bad.example"]})
    client.auth = None
    uuids = [lists["offers"].uuid]
    for address in ("a@bad.example", "a@x.spam.example", "a@spam.example"):
        answer = client.post(
            "/api/public/subscription", json={"email": address, "list_uuids": uuids}
        )
        assert answer.status_code == 400, address
        assert "domain" in answer.json()["message"]
        assert subscriber(session_maker, address) is None
    client.auth = API
    configure(client, smtp_sink, **{"privacy.domain_allowlist": ["good.example"]})
    client.auth = None
    assert (
        client.post(
            "/api/public/subscription", json={"email": "a@other.example", "list_uuids": uuids}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/public/subscription", json={"email": "a@good.example", "list_uuids": uuids}
        ).status_code
        == 200
    )


def test_form_offers_typo_fix_and_refuses_disposable(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    configure(client, smtp_sink, **{"verify.on_subscribe": "reject"})
    client.auth = None
    typo = client.post(
        "/subscription/form", data={"email": "kim@gmial.com", "l": lists["offers"].uuid}
    )
    assert typo.status_code == 400
    assert "Did you mean kim@gmail.com?" in typo.text
    assert 'name="use_suggestion" value="kim@gmail.com"' in typo.text
    assert subscriber(session_maker, "kim@gmial.com") is None
    fixed = client.post(
        "/subscription/form",
        data={
            "email": "kim@gmial.com",
            "use_suggestion": "kim@gmail.com",
            "l": lists["offers"].uuid,
        },
    )
    assert fixed.status_code == 200 and subscriber(session_maker, "kim@gmail.com") is not None
    throwaway = client.post(
        "/subscription/form", data={"email": "x@mailinator.com", "l": lists["offers"].uuid}
    )
    assert throwaway.status_code == 400 and "Disposable" in throwaway.text
    assert subscriber(session_maker, "x@mailinator.com") is None


def test_form_in_chinese(client: TestClient, session_maker: sessionmaker[Session]) -> None:
    make_lists(session_maker)
    client.auth = None
    page = client.get("/subscription/form", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "订阅" in page.text


def test_the_form_shows_no_error_before_it_is_sent(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    # The form's own error message once shared its name with the macro that prints it, so
    # every form showed "<Macro 'form_error'>" as an error.
    make_lists(session_maker)
    client.auth = None
    page = client.get("/subscription/form")
    assert page.status_code == 200
    assert "Macro" not in page.text and 'class="form-error"' not in page.text
