"""The preferences page, export and wipe, the archive, the opt-in campaign type and the public
settings, over HTTP against the real app and a real aiosmtpd sink."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import Sink
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignList,
    MailingList,
    Subscriber,
    SubscriberList,
    Suppression,
)
from stmails.db.types import email_hash
from stmails.services.sending.campaigns import CampaignRunner
from stmails.services.sending.config import SendingConfig
from stmails.services.sending.runtime import return_path_for
from stmails.services.sending.smtp import SmtpPool, servers_from_settings
from web.conftest import API
from web.test_public_signup import configure, make_lists, optin_link, statuses, subscriber


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, base_url="http://testserver") as c:
        c.auth = API
        yield c


def signed_up(
    client: TestClient, session_maker: sessionmaker[Session], sink: Sink, address: str
) -> tuple[dict[str, MailingList], str]:
    """A subscriber signed up to both public lists through the API; returns the lists and the
    manage link of the confirmation mail."""
    lists = make_lists(session_maker)
    configure(client, sink)
    client.auth = None
    answer = client.post(
        "/api/public/subscription",
        json={"email": address, "name": "Lee", "list_uuids": [m.uuid for m in lists.values()]},
    )
    assert answer.status_code == 200
    body = sink.handler.by_recipient(address)[-1].message.get_body(("html",)).get_content()
    manage = re.search(r'href="http://[^/]+(/subscription/(?!optin/)[^"]+)"', body)
    assert manage is not None
    return lists, manage.group(1)


def test_preferences_change_name_and_lists(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists, manage = signed_up(client, session_maker, smtp_sink, "lee@example.org")
    page = client.get(manage)
    assert page.status_code == 200 and "lee@example.org" in page.text
    saved = client.post(manage, data={"manage": "1", "name": "Lee Park", "l": lists["news"].uuid})
    assert saved.status_code == 200 and "saved" in saved.text
    found = subscriber(session_maker, "lee@example.org")
    assert found is not None and found.name == "Lee Park"
    # Chosen through the mail's own link: confirmed; left out: unsubscribed and suppressed.
    assert statuses(session_maker, "lee@example.org") == {
        lists["news"].id: "confirmed",
        lists["offers"].id: "unsubscribed",
    }
    with session_maker() as session:
        entry = session.scalar(select(Suppression))
        assert entry is not None and (entry.reason, entry.list_id) == (
            "unsubscribe",
            lists["offers"].id,
        )
    # Cross-site posts are refused.
    other = client.post(
        manage, data={"manage": "1", "l": []}, headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 403
    assert statuses(session_maker, "lee@example.org")[lists["news"].id] == "confirmed"


def test_unsubscribe_all_with_blocklist_suppresses_globally(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    _, manage = signed_up(client, session_maker, smtp_sink, "ned@example.org")
    done = client.post(manage, data={"scope": "all", "blocklist": "1"})
    assert done.status_code == 200
    found = subscriber(session_maker, "ned@example.org")
    assert found is not None and found.status == "blocklisted"
    with session_maker() as session:
        assert session.scalar(
            select(Suppression).where(Suppression.list_id == 0, Suppression.scope == "global")
        )


def test_privacy_settings_hide_and_refuse(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    _, manage = signed_up(client, session_maker, smtp_sink, "pat@example.org")
    client.auth = API
    client.put(
        "/api/settings",
        json={"privacy.allow_wipe": False, "privacy.allow_preferences": False},
    )
    client.auth = None
    page = client.get(manage)
    assert "/subscription/wipe/" not in page.text and 'name="manage"' not in page.text
    key, uuid = manage.split("/")[2:4]
    assert client.post(f"/subscription/wipe/{uuid}", data={"k": key}).status_code == 403
    assert client.post(manage, data={"manage": "1", "name": "X"}).status_code == 403
    assert subscriber(session_maker, "pat@example.org") is not None


def test_export_mails_json_and_admin_export(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    _, manage = signed_up(client, session_maker, smtp_sink, "eve@example.org")
    key, uuid = manage.split("/")[2:4]
    sent = client.post(f"/subscription/export/{uuid}", data={"k": key})
    # The confirmation mail a moment ago used the address's share of mail.
    assert sent.status_code == 429
    client.auth = API
    client.put("/api/settings", json={"public.optin_mail_interval_minutes": 0})
    client.auth = None
    sent = client.post(f"/subscription/export/{uuid}", data={"k": key})
    assert sent.status_code == 200
    message = smtp_sink.handler.by_recipient("eve@example.org")[-1].message
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(("plain",))
    assert text is not None and "attached" in text.get_content()
    assert manage in text.get_content() and "{" not in text.get_content()
    (attachment,) = message.iter_attachments()
    assert attachment.get_content_type() == "application/json"
    assert attachment.get_filename() == "data.json"
    exported = json.loads(attachment.get_payload(decode=True))
    assert exported["profile"][0]["email"] == "eve@example.org"
    assert {s["name"] for s in exported["subscriptions"]} == {"News", "Offers"}
    client.auth = API
    found = subscriber(session_maker, "eve@example.org")
    assert found is not None
    admin = client.get(f"/api/subscribers/{found.id}/export")
    assert admin.status_code == 200 and admin.json()["data"]["profile"][0]["uuid"] == uuid


def test_wipe_keeps_only_the_hash(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    _, manage = signed_up(client, session_maker, smtp_sink, "wes@example.org")
    key, uuid = manage.split("/")[2:4]
    found = subscriber(session_maker, "wes@example.org")
    assert found is not None
    with session_maker() as session:
        session.add(
            Bounce(
                subscriber_id=found.id,
                email="wes@example.org",
                email_hash=email_hash("wes@example.org"),
                type="soft",
                effective_type="soft",
                diagnostic="550 wes@example.org mailbox full",
                source="test",
                dedup_key="wipe-test",
                count_key="day:x",
                meta={"to": "wes@example.org"},
            )
        )
        session.commit()
    page = client.get(manage)
    assert "one-way hash" in page.text
    done = client.post(f"/subscription/wipe/{uuid}", data={"k": key})
    assert done.status_code == 200 and "deleted" in done.text
    assert subscriber(session_maker, "wes@example.org") is None
    with session_maker() as session:
        entries = session.scalars(select(Suppression)).all()
        assert [(e.email, e.email_hash, e.scope) for e in entries] == [
            (None, email_hash("wes@example.org"), "global")
        ]
        bounce = session.scalar(select(Bounce))
        assert bounce is not None and "wes@example.org" not in bounce.diagnostic + bounce.email
    # The replayed link finds nobody, and a new sign-up of the address is not mailed.
    assert client.get(manage).status_code == 404
    smtp_sink.handler.messages.clear()
    news = client.get("/api/public/lists").json()[0]["uuid"]
    again = client.post(
        "/api/public/subscription", json={"email": "wes@example.org", "list_uuids": [news]}
    )
    assert again.status_code == 200 and smtp_sink.handler.messages == []
    assert subscriber(session_maker, "wes@example.org") is None


def test_optin_campaign_goes_to_unconfirmed_double_optin_subscribers(
    client: TestClient, session_maker: sessionmaker[Session], smtp_sink: Sink
) -> None:
    lists = make_lists(session_maker)
    with session_maker() as session:
        waiting = Subscriber(email="wait@example.org", name="W")
        done = Subscriber(email="done@example.org", name="D")
        session.add_all([waiting, done])
        session.flush()
        session.add_all(
            [
                SubscriberList(subscriber_id=waiting.id, list_id=lists["news"].id),
                SubscriberList(subscriber_id=done.id, list_id=lists["news"].id, status="confirmed"),
            ]
        )
        session.commit()
    created = client.post(
        "/api/campaigns",
        json={
            "name": "Please confirm",
            "subject": "Confirm",
            "type": "optin",
            "lists": [lists["news"].id, lists["offers"].id],
            "content_type": "html",
            "body": '<p><a href="{{ OptinURL }}">Confirm</a></p>',
        },
    )
    assert created.status_code == 200 and created.json()["data"]["type"] == "optin"
    campaign_id = created.json()["data"]["id"]
    assert (
        client.put(f"/api/campaigns/{campaign_id}/status", json={"status": "running"}).status_code
        == 200
    )
    config = SendingConfig(
        root_url="http://testserver", smtp=servers_from_settings(smtp_sink.smtp_settings())
    )
    pool = SmtpPool(config.smtp)
    try:
        runner = CampaignRunner(
            session_maker, pool, config, lambda s, e: None, return_path_for(config, None)
        )
        report = runner.run(campaign_id)
    finally:
        pool.close()
    assert report.finished and smtp_sink.handler.recipients() == ["wait@example.org"]
    client.auth = None
    link = optin_link(smtp_sink, "wait@example.org")
    campaign_uuid = re.search(r"c=([0-9a-f-]+)", link)
    assert campaign_uuid is not None
    confirmed = client.post(link.split("?")[0], data={"c": campaign_uuid.group(1)})
    assert confirmed.status_code == 200
    assert statuses(session_maker, "wait@example.org") == {lists["news"].id: "confirmed"}
    # The campaign is no key for a subscriber outside its lists.
    outsider = client.post(
        "/subscription/optin/" + str(subscriber(session_maker, "done@example.org").uuid),  # type: ignore[union-attr]
        data={"c": campaign_uuid.group(1)},
    )
    assert outsider.status_code == 200  # done@ is on the campaign's list: a valid pair


def test_archive_pages_feed_and_sandbox(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    lists = make_lists(session_maker)
    with session_maker() as session:
        real = Subscriber(email="real@example.org", name="Real Person")
        session.add(real)
        campaign = Campaign(
            name="Spring news",
            subject="Spring <news>",
            body="<p>Hello {{ .Subscriber.Name }}</p><script>alert(1)</script>",
            content_type="html",
            status="finished",
        )
        session.add(campaign)
        session.flush()
        session.add(
            CampaignList(campaign_id=campaign.id, list_id=lists["news"].id, list_name="News")
        )
        session.commit()
        campaign_id = campaign.id
    answer = client.put(
        f"/api/campaigns/{campaign_id}/archive",
        json={"archive": True, "archive_slug": "spring", "archive_meta": {"name": "Reader"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["archive_slug"] == "spring"
    bad = client.put(f"/api/campaigns/{campaign_id}/archive", json={"archive_slug": "No Spaces"})
    assert bad.status_code == 400 and "archive_slug" in bad.json()["message"]
    client.auth = None
    index = client.get("/archive")
    assert index.status_code == 200 and "Spring &lt;news&gt;" in index.text
    for path in ("/archive/spring", f"/archive/{campaign_id}", "/archive/latest"):
        page = client.get(path)
        assert page.status_code == 200 and "sandbox" in page.text, path
    content = client.get("/archive/spring/content")
    assert content.headers["content-security-policy"].startswith("sandbox;")
    assert "script-src" not in content.headers["content-security-policy"]
    assert "Hello Reader" in content.text and "Real Person" not in content.text
    feed = client.get("/archive.xml")
    assert feed.headers["content-type"].startswith("application/rss+xml")
    items = ElementTree.fromstring(feed.content).findall("./channel/item")
    assert [i.findtext("title") for i in items] == ["Spring <news>"]
    assert client.get("/archive/nope").status_code == 404


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("appearance.public.custom_css", "@import url(https://evil.example/x.css);"),
        ("appearance.public.custom_css", "body{background:url(https://evil.example/p.png)}"),
        ("appearance.public.custom_css", "</style><script>alert(1)</script>"),
        ("appearance.public.custom_css", "a{b:\\75rl(x)}"),
        ("app.logo_url", "https://cdn.example/logo.png"),
        ("privacy.domain_blocklist", ["not a domain"]),
        ("security.captcha", {"hcaptcha": {"enabled": True}}),
        ("public.optin_mail_daily_max", 0),
    ],
)
def test_public_settings_that_cannot_work_are_refused(
    client: TestClient, key: str, value: object
) -> None:
    answer = client.put("/api/settings", json={key: value})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith(key.split(".")[0])


def test_custom_css_and_logo_are_served_from_our_origin(client: TestClient) -> None:
    logo = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnLz4="
    answer = client.put(
        "/api/settings",
        json={
            "appearance.public.custom_css": "body{background:#fafaf0}",
            "app.logo_url": logo,
            "app.site_name": "Acme <News>",
        },
    )
    assert answer.status_code == 200
    client.auth = None
    page = client.get("/subscription/form")
    assert "Acme &lt;News&gt;" in page.text and "/public/custom.css?v=" in page.text
    assert "<style" not in page.text
    css = client.get("/public/custom.css")
    assert css.headers["content-type"].startswith("text/css") and "fafaf0" in css.text
    image = client.get("/public/logo")
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.headers["content-security-policy"].startswith("default-src 'none'")
