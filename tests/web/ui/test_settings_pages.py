"""The Settings pages over HTTP: each group renders, saving goes through the settings API's
validation (a value that cannot work is refused next to its field, nothing stored), secrets
never reach the page, and the bounce rules saved here are the ones bounces then meet. The SMTP
test button talks to a real aiosmtpd with AUTH, the mailbox test to a real Dovecot.
(tests/web/ui/test_settings_browser.py drives the same pages in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.mailbox.conftest import Mailbox, dovecot, mailbox  # noqa: F401
from ingest.mailbox.dovecot import PASSWORD, USER
from sending.conftest import MakeServer, certificate, smtp_server  # noqa: F401
from stmails.db.models import Subscriber
from stmails.services import settings as settings_service
from stmails.web.admin import settings as settings_page
from stmails.web.admin.settings import GROUPS, error_name
from web.conftest import API
from web.ui.test_pages import ORIGIN, sign_in


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, base_url=ORIGIN) as client:
        yield client


def form_of(html: str) -> dict[str, Any]:
    """The fields a browser would post from the settings form (checked boxes only)."""
    form = html[html.index('class="settings-form"') :]
    fields: dict[str, Any] = {}
    for tag in re.findall(r"<input [^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if kind and kind.group(1) == "checkbox":
            if " checked" in tag:
                fields.setdefault(unescape(name.group(1)), []).append(
                    unescape(value.group(1) if value else "on")
                )
            continue
        fields[unescape(name.group(1))] = unescape(value.group(1) if value else "")
    for name, body in re.findall(
        r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S
    ):
        fields[unescape(name)] = unescape(body)
    for name, body in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body) or re.search(
            r'<option value="([^"]*)"', body
        )
        fields[unescape(name)] = unescape(chosen.group(1)) if chosen else ""
    return fields


def post(client: TestClient, url: str, fields: dict[str, Any], token: str) -> Any:
    data = {k: v for k, v in fields.items() if v is not None}
    return client.post(
        url,
        data={**data, "csrf_token": token},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def stored(session_maker: sessionmaker[Session], key: str) -> Any:
    with session_maker() as session:
        return settings_service.get(session, key)


def test_every_settings_page_renders_with_its_tabs(browser: TestClient) -> None:
    sign_in(browser)
    assert browser.get("/admin/settings", follow_redirects=False).headers["location"] == (
        "/admin/settings/general"
    )
    for group in GROUPS:
        answer = browser.get(f"/admin/settings/{group.key}")
        assert answer.status_code == 200, group.key
        assert 'aria-current="page">' in answer.text
        for other in GROUPS:
            assert f'href="/admin/settings/{other.key}"' in answer.text
    assert browser.get("/admin/settings/nope").status_code == 404


def test_bounce_settings_saved_in_the_page_act_on_the_next_bounces(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    page = browser.get("/admin/settings/bounces").text
    # The user's documents: enable, per-type count and action, webhooks with their URL.
    for label in ("Enable bounce processing", "Soft bounces", "Hard bounces", "Complaints"):
        assert label in page
    # The URLs to copy start with the server's public root URL (STMAILS_ROOT_URL's default).
    root = "http://127.0.0.1:9000"
    assert f"{root}/webhooks/service/ses" in page and f"{root}/webhooks/bounce" in page
    fields = form_of(page)
    assert fields["bounce.actions.soft.count"] == "2"
    assert fields["bounce.actions.soft.action"] == "none"
    fields["bounce.actions.soft.count"] = "2"
    fields["bounce.actions.soft.action"] = "blocklist"
    fields["bounce.ses_enabled"] = ["on"]
    saved = post(browser, "/admin/settings/bounces", fields, token)
    assert saved.status_code == 303, saved.text
    assert stored(session_maker, "bounce.actions")["soft"] == {
        "count": 2,
        "action": "blocklist",
        "window_days": 0,
    }
    assert stored(session_maker, "bounce.ses_enabled") is True
    assert 'name="bounce.actions.soft.action"' in browser.get("/admin/settings/bounces").text

    made = browser.post(
        "/api/subscribers", json={"email": "soft@example.com", "name": "Soft"}, auth=API
    )
    assert made.status_code == 200, made.text
    listed = browser.post("/api/lists", json={"name": "News"}, auth=API)
    assert listed.status_code == 200, listed.text
    campaigns = []
    for number in (1, 2):
        campaign = browser.post(
            "/api/campaigns",
            json={
                "name": f"Issue {number}",
                "subject": f"Issue {number}",
                "lists": [listed.json()["data"]["id"]],
                "body": "<p>Hello</p>",
            },
            auth=API,
        )
        assert campaign.status_code == 200, campaign.text
        campaigns.append(campaign.json()["data"]["uuid"])

    def status() -> str:
        with session_maker() as session:
            return session.scalars(
                select(Subscriber.status).where(Subscriber.email == "soft@example.com")
            ).one()

    # Soft bounces count once per campaign: the second campaign's reaches the count of 2.
    bounce = {"email": "soft@example.com", "source": "api", "type": "soft"}
    for number, expected in ((0, "enabled"), (0, "enabled"), (1, "blocklisted")):
        sent = {**bounce, "campaign_uuid": campaigns[number]}
        assert browser.post("/webhooks/bounce", json=sent, auth=API).status_code == 200
        assert status() == expected


def test_a_setting_that_cannot_work_is_refused_next_to_its_field(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/bounces").text)
    fields["bounce.actions.hard.count"] = "0"
    fields["bounce.actions.soft.action"] = "blocklist"
    refused = post(browser, "/admin/settings/bounces", fields, token)
    assert refused.status_code == 400
    error = re.search(r'id="e-f-bounce\.actions\.hard\.count">([^<]+)<', refused.text)
    assert error and "greater than or equal to 1" in error.group(1)
    assert 'aria-invalid="true"' in refused.text
    # Nothing of the form was stored, and the page kept what was typed.
    assert stored(session_maker, "bounce.actions")["soft"]["action"] == "none"
    assert form_of(refused.text)["bounce.actions.soft.action"] == "blocklist"

    fields["bounce.actions.hard.count"] = "many"
    refused = post(browser, "/admin/settings/bounces", fields, token)
    assert refused.status_code == 400 and "Enter a whole number." in refused.text

    general = form_of(browser.get("/admin/settings/general").text)
    general["app.root_url"] = "not a url"
    refused = post(browser, "/admin/settings/general", general, token)
    assert refused.status_code == 400
    assert re.search(r'id="e-f-app\.root_url">[^<]+<', refused.text), refused.text
    assert stored(session_maker, "app.root_url") == ""

    # A mailbox that cannot work (no such protocol) is refused at its entry.
    bounces = form_of(browser.get("/admin/settings/bounces").text)
    bounces["bounce.mailboxes.0.host"] = "pop.example.com"
    bounces["bounce.mailboxes.0.tls_mode"] = "sometimes"
    refused = post(browser, "/admin/settings/bounces", bounces, token)
    assert refused.status_code == 400 and "tls_mode" in refused.text
    assert stored(session_maker, "bounce.mailboxes") == []


def test_secrets_never_reach_the_page_and_an_empty_input_keeps_them(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/bounces").text)
    fields["bounce.postmark.enabled"] = ["on"]
    fields["bounce.postmark.username"] = "pm-user"
    fields["bounce.postmark.password"] = "pm-secret-value"
    fields["bounce.sendgrid_key"] = "sg-secret-key"
    assert post(browser, "/admin/settings/bounces", fields, token).status_code == 303
    page = browser.get("/admin/settings/bounces").text
    assert "pm-secret-value" not in page and "sg-secret-key" not in page
    assert "A secret is stored; leave this empty to keep it." in page
    again = form_of(page)
    assert again["bounce.postmark.password"] == "" and again["bounce.sendgrid_key"] == ""
    again["bounce.postmark.username"] = "pm-user-2"
    assert post(browser, "/admin/settings/bounces", again, token).status_code == 303
    assert stored(session_maker, "bounce.postmark") == {
        "enabled": True,
        "username": "pm-user-2",
        "password": "pm-secret-value",
    }
    assert stored(session_maker, "bounce.sendgrid_key") == "sg-secret-key"


def test_smtp_servers_are_added_edited_and_removed(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/smtp").text)
    assert fields["smtp.count"] == "2"  # the default server and the blank "add" entry
    fields.update(
        {
            "smtp.1.host": "smtp.example.com",
            "smtp.1.port": "587",
            "smtp.1.name": "second",
            "smtp.1.auth_protocol": "login",
            "smtp.1.username": "user",
            "smtp.1.password": "smtp-secret",
            "smtp.1.tls_type": "STARTTLS",
            "smtp.1.email_headers": '[{"Return-Path": "bounces@example.com"}]',
        }
    )
    assert post(browser, "/admin/settings/smtp", fields, token).status_code == 303
    servers = stored(session_maker, "smtp")
    assert [s["host"] for s in servers] == ["127.0.0.1", "smtp.example.com"]
    assert servers[1]["password"] == "smtp-secret" and servers[1]["uuid"]
    assert servers[1]["email_headers"] == [{"Return-Path": "bounces@example.com"}]

    fields = form_of(browser.get("/admin/settings/smtp").text)
    assert fields["smtp.count"] == "3"
    fields["smtp.1.email_headers"] = "[not json"
    refused = post(browser, "/admin/settings/smtp", fields, token)
    assert refused.status_code == 400 and "Not valid JSON" in refused.text
    fields["smtp.1.email_headers"] = '[{"Return-Path": "bounces@example.com"}]'
    fields["smtp.0.remove"] = ["on"]
    assert post(browser, "/admin/settings/smtp", fields, token).status_code == 303
    (server,) = stored(session_maker, "smtp")
    assert (server["host"], server["password"]) == ("smtp.example.com", "smtp-secret")


def test_the_smtp_test_button_shows_the_servers_answer(
    browser: TestClient,
    smtp_server: MakeServer,  # noqa: F811
    session_maker: sessionmaker[Session],
) -> None:
    server = smtp_server(tls="starttls", auth=True)
    (entry,) = server.smtp_settings()
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/smtp").text)
    fields.update(
        {
            "smtp.0.host": entry["host"],
            "smtp.0.port": str(entry["port"]),
            "smtp.0.auth_protocol": "login",
            "smtp.0.username": entry["username"],
            "smtp.0.password": entry["password"],
            "smtp.0.tls_type": "STARTTLS",
            "smtp.0.tls_skip_verify": ["on"],
            "test_email": "me@example.net",
        }
    )
    answer = post(browser, "/admin/settings/smtp/test/0", fields, token)
    assert answer.status_code == 200, answer.text
    assert 'data-test-result="ok"' in answer.text
    assert "250 2.0.0 queued" in answer.text
    assert len(server.handler.messages) == 1
    # The test saves nothing; the form keeps what was typed (but never the password).
    assert stored(session_maker, "smtp")[0]["host"] == "127.0.0.1"
    assert form_of(answer.text)["smtp.0.port"] == str(entry["port"])
    assert entry["password"] not in answer.text
    assert "Not saved yet: type it again before saving." in answer.text

    fields["smtp.0.password"] = "wrong"
    failed = post(browser, "/admin/settings/smtp/test/0", fields, token)
    assert 'data-test-result="failed"' in failed.text
    assert "Failed at auth: 535" in failed.text
    assert len(server.handler.messages) == 1


def test_the_mailbox_test_button_connects_to_dovecot(
    browser: TestClient,
    mailbox: Mailbox,  # noqa: F811
    session_maker: sessionmaker[Session],
) -> None:
    mailbox.append(b"Subject: waiting\r\n\r\nbody\r\n")
    token = sign_in(browser)
    fields = form_of(browser.get("/admin/settings/bounces").text)
    fields.update(
        {
            "bounce.mailboxes.0.host": "127.0.0.1",
            "bounce.mailboxes.0.type": "imap",
            "bounce.mailboxes.0.port": str(mailbox.server.ports["imap"]),
            "bounce.mailboxes.0.tls_mode": "none",
            "bounce.mailboxes.0.username": USER,
            "bounce.mailboxes.0.password": PASSWORD,
        }
    )
    answer = post(browser, "/admin/settings/bounces/mailbox/test/0", fields, token)
    assert answer.status_code == 200, answer.text
    assert 'data-test-result="ok"' in answer.text
    assert "1 messages waiting" in answer.text
    assert stored(session_maker, "bounce.mailboxes") == []
    # Saved, then tested again with the masked (empty) password: the stored one is used.
    assert post(browser, "/admin/settings/bounces", fields, token).status_code == 303
    again = form_of(browser.get("/admin/settings/bounces").text)
    assert again["bounce.mailboxes.0.password"] == ""
    answer = post(browser, "/admin/settings/bounces/mailbox/test/0", again, token)
    assert 'data-test-result="ok"' in answer.text, answer.text
    again["bounce.mailboxes.0.password"] = "wrong-password"
    failed = post(browser, "/admin/settings/bounces/mailbox/test/0", again, token)
    assert 'data-test-result="failed"' in failed.text
    assert "IMAP 127.0.0.1" in failed.text


def test_the_mailbox_test_api_uses_the_stored_password_only_for_the_same_server(
    client: TestClient,
    mailbox: Mailbox,  # noqa: F811
) -> None:
    entry = {
        "uuid": "box-1",
        "type": "pop",
        "host": "127.0.0.1",
        "port": mailbox.server.ports["pop3"],
        "tls_mode": "none",
        "username": USER,
        "password": PASSWORD,
    }
    mailbox.append(b"Subject: one\r\n\r\nx\r\n", b"Subject: two\r\n\r\ny\r\n")
    good = client.post("/api/settings/bounces/mailbox/test", json=entry)
    assert good.status_code == 200, good.text
    assert good.json()["data"]["ok"] is True and good.json()["data"]["messages"] == 2
    wrong = client.post(
        "/api/settings/bounces/mailbox/test", json={**entry, "password": "nope-nope"}
    )
    assert wrong.status_code == 422
    assert wrong.json()["message"].startswith("the mailbox test failed: POP3 127.0.0.1")
    assert client.put("/api/settings", json={"bounce.mailboxes": [entry]}).status_code == 200
    (read,) = client.get("/api/settings").json()["data"]["bounce.mailboxes"]
    assert read["password"] == "••••••••"
    same = client.post("/api/settings/bounces/mailbox/test", json=read)
    assert same.status_code == 200 and same.json()["data"]["messages"] == 2
    # Pointed elsewhere, the masked password is not the stored one.
    moved = {**read, "port": mailbox.server.ports["imap"], "type": "imap"}
    elsewhere = client.post("/api/settings/bounces/mailbox/test", json=moved)
    assert elsewhere.status_code == 422
    assert elsewhere.json()["data"]["ok"] is False
    bad = client.post("/api/settings/bounces/mailbox/test", json={**entry, "type": "uucp"})
    assert bad.status_code == 400 and "uucp" in bad.json()["message"]
    # The mailboxes were only read.
    assert mailbox.subjects() == ["one", "two"]


def test_a_user_who_may_only_read_settings_sees_them_and_cannot_save(
    browser: TestClient, client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    roles = client.post(
        "/api/roles/users", json={"name": "Settings reader", "permissions": ["settings:get"]}
    )
    assert roles.status_code == 200, roles.text
    made = client.post(
        "/api/users",
        json={
            "username": "reader",
            "password": "reader-password-1",
            "type": "user",
            "status": "enabled",
            "user_role_id": roles.json()["data"]["id"],
        },
    )
    assert made.status_code == 200, made.text
    token = sign_in(browser, "reader", "reader-password-1")
    page = browser.get("/admin/settings/bounces")
    assert page.status_code == 200
    assert '<fieldset class="plain" disabled>' in page.text
    assert "Test connection" not in page.text
    fields = form_of(page.text)
    fields["bounce.actions.soft.action"] = "delete"
    refused = post(browser, "/admin/settings/bounces", fields, token)
    assert refused.status_code == 403
    assert stored(session_maker, "bounce.actions")["soft"]["action"] == "none"
    assert post(browser, "/admin/settings/smtp/test/0", {}, token).status_code == 403


def test_error_names_follow_the_inputs() -> None:
    names = {"smtp.0.host", "smtp.0", "bounce.mailboxes.1", "bounce.actions.soft.count"}
    assert error_name("smtp[0].host", names) == "smtp.0.host"
    assert error_name("smtp[0].headers.x", names) == "smtp.0"
    assert error_name("bounce.mailboxes[1]", names) == "bounce.mailboxes.1"
    assert error_name("bounce.actions.soft.count", names) == "bounce.actions.soft.count"
    assert error_name("sending.verp", names) == ""


def test_the_alerts_tab_edits_the_alert_thresholds(
    browser: TestClient, session_maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tab that appears with services.alerts (built apart): shown here by hand."""
    monkeypatch.setitem(settings_page.GROUP_BY_KEY, "alerts", settings_page._alerts_group())
    # services.alerts' defaults (docs of its `deliverability.alerts`).
    defaults = {
        "enabled": True,
        "bounce_warning": 2.0,
        "bounce_critical": 5.0,
        "domain_bounce": 10.0,
        "complaint": 0.1,
        "min_sample": 100,
        "complaint_min_sample": 1000,
        "domain_min_sample": 50,
        "window_sends": 1000,
        "window_minutes": 60,
        "pause_campaign": True,
        "hold_scheduled": True,
        "hold_domains": True,
    }
    monkeypatch.setitem(settings_service.DEFAULTS, "deliverability.alerts", defaults)
    token = sign_in(browser)
    page = browser.get("/admin/settings/alerts")
    assert page.status_code == 200 and "Bounce rate critical (%)" in page.text
    fields = form_of(page.text)
    assert fields["deliverability.alerts.window_minutes"] == "60"
    del fields["deliverability.alerts.pause_campaign"]
    fields.update(
        {
            "deliverability.alerts.bounce_warning": "3",
            "deliverability.alerts.bounce_critical": "6.5",
            "deliverability.alerts.window_sends": "2000",
            "deliverability.alerts.enabled": ["on"],
        }
    )
    assert post(browser, "/admin/settings/alerts", fields, token).status_code == 303
    saved = stored(session_maker, "deliverability.alerts")
    assert saved["bounce_warning"] == 3.0 and saved["bounce_critical"] == 6.5
    assert saved["window_sends"] == 2000 and saved["enabled"] is True
    assert saved["pause_campaign"] is False  # left unchecked
    fields["deliverability.alerts.bounce_critical"] = "lots"
    refused = post(browser, "/admin/settings/alerts", fields, token)
    assert refused.status_code == 400 and "Enter a number." in refused.text
