"""The Campaigns and Templates pages over HTTP (tests/web/ui/test_campaigns_browser.py drives
them in Chromium): forms, errors, permissions, escaping, the preview's own CSP, status
changes, test sends to a real aiosmtpd server, and the template rules."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sending.conftest import Sink
from stmails.db.models import Campaign, Setting, Template
from stmails.services import lists as list_service
from stmails.services import roles, settings, users
from stmails.services import subscribers as subscriber_service
from web.ui.test_pages import ORIGIN, csrf_of, sign_in

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, base_url=ORIGIN) as client:
        yield client


@pytest.fixture
def list_ids(session_maker: sessionmaker[Session]) -> list[int]:
    with session_maker() as session:
        made = [
            list_service.create(session, name="Newsletter").id,
            list_service.create(session, name=XSS).id,
        ]
        session.commit()
        return made


def post(client: TestClient, url: str, token: str, **fields: str) -> httpx.Response:
    return client.post(
        url,
        data={"csrf_token": token, **fields},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def create_campaign(client: TestClient, token: str, list_id: int, **extra: str) -> int:
    answer = client.post(
        "/admin/campaigns/new",
        data={
            "csrf_token": token,
            "name": extra.pop("name", "Spring news"),
            "subject": "Hello {{ .Subscriber.FirstName }}",
            "lists": str(list_id),
            "content_type": "html",
            "body": extra.pop("body", "<p>Spring is here</p>"),
            **extra,
        },
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/admin/campaigns/(\d+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def test_create_edit_and_list_a_campaign(browser: TestClient, list_ids: list[int]) -> None:
    token = sign_in(browser)
    empty = browser.get("/admin/campaigns")
    assert empty.status_code == 200 and "No campaigns yet." in empty.text

    # A form missing its name, subject and lists comes back with each error, nothing saved.
    refused = browser.post(
        "/admin/campaigns/new",
        data={"csrf_token": token, "name": "", "subject": "", "content_type": "html"},
        headers={"Origin": ORIGIN},
    )
    assert refused.status_code == 400
    for text in ("Give the campaign a name.", "Give the campaign a subject.", "Choose at least"):
        assert text in refused.text
    assert "No campaigns yet." in browser.get("/admin/campaigns").text

    campaign_id = create_campaign(browser, token, list_ids[1], name=XSS, tags="a, b")
    shown = browser.get(f"/admin/campaigns/{campaign_id}")
    assert shown.status_code == 200
    assert XSS not in shown.text and "&lt;script&gt;alert(" in shown.text
    assert 'sandbox title="Preview"' in shown.text
    assert "Newsletter &lt;news@example.com&gt;" in shown.text

    listing = browser.get("/admin/campaigns")
    assert f'href="/admin/campaigns/{campaign_id}"' in listing.text
    assert XSS not in listing.text
    assert "Draft" in listing.text

    saved = post(
        browser,
        f"/admin/campaigns/{campaign_id}",
        token,
        name="Spring news",
        subject="New subject",
        lists=str(list_ids[0]),
        content_type="markdown",
        body="# Title",
        send_at="2030-01-02T03:04",
    )
    assert saved.status_code == 303
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    assert 'value="New subject"' in page and 'value="2030-01-02T03:04"' in page
    assert '<option value="markdown" selected>' in page
    # Searching and filtering by status.
    assert "Spring news" in browser.get("/admin/campaigns?q=spring&status=draft").text
    assert "No campaigns yet." in browser.get("/admin/campaigns?status=running").text
    assert browser.get("/admin/campaigns/99999").status_code == 404
    chinese = browser.get("/admin/campaigns", headers={"Accept-Language": "zh-CN"}).text
    assert "<h1>活动</h1>" in chinese and "草稿" in chinese


def test_the_preview_has_its_own_sandbox_csp_and_renders_unsaved_content(
    browser: TestClient, list_ids: list[int]
) -> None:
    token = sign_in(browser)
    campaign_id = create_campaign(browser, token, list_ids[0])
    saved = browser.get(f"/admin/campaigns/{campaign_id}/preview")
    assert saved.status_code == 200
    csp = saved.headers["content-security-policy"]
    assert csp.startswith("sandbox;") and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp
    assert saved.headers["x-frame-options"] == "SAMEORIGIN"
    assert "Spring is here" in saved.text
    unsaved = post(
        browser,
        f"/admin/campaigns/{campaign_id}/preview",
        token,
        subject="s",
        content_type="markdown",
        body="**Unsaved words**",
    )
    assert "<strong>Unsaved words</strong>" in unsaved.text
    # Nothing was saved.
    assert "Unsaved words" not in browser.get(f"/admin/campaigns/{campaign_id}/preview").text


def test_status_changes_follow_the_rules_and_show_the_content_check(
    browser: TestClient, list_ids: list[int], session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    campaign_id = create_campaign(
        browser, token, list_ids[0], body="<p>FREE!!! Act now, click here, 100% free winner</p>"
    )
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    # The content check's findings are shown before the start.
    assert 'id="content-report"' in page and "Content check: score" in page
    assert "Start sending this campaign now?" in page
    assert "The content check found" in page
    english = re.search(r'id="content-report".*?</div>', page, re.S)
    chinese = browser.get(
        f"/admin/campaigns/{campaign_id}", headers={"Accept-Language": "zh-CN"}
    ).text
    translated = re.search(r'id="content-report".*?</div>', chinese, re.S)
    assert english and translated and "内容检查" in translated.group(0)
    # The findings themselves are in the page's language (services/content_check.py).
    assert translated.group(0).count("<li") == english.group(0).count("<li") > 0
    assert not re.search(r"<li[^>]*>[A-Za-z]", translated.group(0))
    url = f"/admin/campaigns/{campaign_id}/status"
    # Scheduling without a time is refused with the reason.
    refused = post(browser, url, token, status="scheduled")
    assert refused.status_code == 303
    assert "send_at" in browser.get(f"/admin/campaigns/{campaign_id}").text
    for status, label in (("running", "Running"), ("paused", "Paused"), ("cancelled", "Cancelled")):
        done = post(browser, url, token, status=status)
        assert done.status_code == 303
        with session_maker() as session:
            assert session.get(Campaign, campaign_id).status == status  # type: ignore[union-attr]
        assert label in browser.get(f"/admin/campaigns/{campaign_id}").text
        # The progress fragment polls (and shows the rate) only while the campaign runs.
        fragment = browser.get(f"/admin/campaigns/{campaign_id}/progress").text
        assert ('hx-trigger="every 3s"' in fragment) == (status == "running")
        assert ("0 a minute" in fragment) == (status == "running")
    stats = browser.get(f"/admin/campaigns/{campaign_id}/stats")
    assert stats.status_code == 200, stats.text
    assert '<dd data-figure="sent">0</dd>' in stats.text
    assert f"/api/campaigns/analytics/views?id={campaign_id}&amp;from=" in stats.text
    # A cancelled campaign offers no action and cannot be edited.
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    assert f'action="/admin/campaigns/{campaign_id}/status"' not in page
    assert "<fieldset disabled" in page


def test_test_send_reaches_a_real_smtp_server(
    browser: TestClient,
    list_ids: list[int],
    session_maker: sessionmaker[Session],
    smtp_sink: Sink,
) -> None:
    with session_maker() as session:
        settings.update(session, {"smtp": smtp_sink.smtp_settings()})
        subscriber_service.create(session, email="tester@example.com", name="Tess")
        session.commit()
    token = sign_in(browser)
    campaign_id = create_campaign(browser, token, list_ids[0])
    sent = post(
        browser,
        f"/admin/campaigns/{campaign_id}/test",
        token,
        addresses="tester@example.com",
    )
    assert sent.status_code == 303
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    assert "Test sent to tester@example.com." in page
    messages = smtp_sink.handler.by_recipient("tester@example.com")
    assert len(messages) == 1 and b"Spring is here" in messages[0].data
    # An address that is no subscriber is refused with the reason; no address at all too.
    post(browser, f"/admin/campaigns/{campaign_id}/test", token, addresses="who@example.com")
    assert "subscriber not found" in browser.get(f"/admin/campaigns/{campaign_id}").text
    post(browser, f"/admin/campaigns/{campaign_id}/test", token, addresses=" ")
    assert "Give one or more addresses." in browser.get(f"/admin/campaigns/{campaign_id}").text
    assert len(smtp_sink.handler.messages) == 1


def test_actions_recheck_permissions(
    app: FastAPI, session_maker: sessionmaker[Session], list_ids: list[int]
) -> None:
    with session_maker() as session:
        role = roles.create(session, "Campaign reader", ["campaigns:get_all", "templates:get"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, raise_server_exceptions=False, base_url=ORIGIN) as admin:
        campaign_id = create_campaign(admin, sign_in(admin), list_ids[0])
    with TestClient(app, raise_server_exceptions=False, base_url=ORIGIN) as reader:
        token = sign_in(reader, "reader", "reader-password-1")
        page = reader.get(f"/admin/campaigns/{campaign_id}")
        assert page.status_code == 200
        assert "<fieldset disabled" in page.text and "Send a test" not in page.text
        assert "New campaign" not in reader.get("/admin/campaigns").text
        for url, fields in (
            ("/admin/campaigns/new", {"name": "x", "subject": "y", "lists": str(list_ids[0])}),
            (f"/admin/campaigns/{campaign_id}", {"name": "changed"}),
            (f"/admin/campaigns/{campaign_id}/status", {"status": "running"}),
            (f"/admin/campaigns/{campaign_id}/test", {"addresses": "a@example.com"}),
            (f"/admin/campaigns/{campaign_id}/delete", {}),
            ("/admin/templates/new", {"name": "t", "type": "tx", "body": "x"}),
        ):
            answer = post(reader, url, token, **fields)
            assert answer.status_code == 403, url
        assert reader.get("/admin/templates").status_code == 200
    with session_maker() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "draft" and campaign.name != "changed"


def test_templates_create_preview_default_and_delete(
    browser: TestClient, session_maker: sessionmaker[Session], list_ids: list[int]
) -> None:
    token = sign_in(browser)
    listing = browser.get("/admin/templates")
    assert listing.status_code == 200
    # A template that does not compile is refused with the reason, nothing saved.
    broken = post(
        browser, "/admin/templates/new", token, name="Broken", type="campaign", body="{{ x"
    )
    assert broken.status_code == 400
    created = post(
        browser,
        "/admin/templates/new",
        token,
        name=XSS,
        type="campaign",
        body='<html><body><h1>Brand</h1>{{ template "content" . }}</body></html>',
    )
    assert created.status_code == 303
    template_id = int(created.headers["location"].rsplit("/", 1)[1])
    assert XSS not in browser.get("/admin/templates").text
    preview = browser.get(f"/admin/templates/{template_id}/preview")
    assert "<h1>Brand</h1>" in preview.text and "sample campaign content" in preview.text
    assert preview.headers["content-security-policy"].startswith("sandbox;")
    unsaved = post(
        browser,
        "/admin/templates/preview",
        token,
        type="tx",
        subject="Hi",
        body="<p>Dear {{ .Subscriber.Name }}</p>",
    )
    assert "Dear Demo Subscriber" in unsaved.text

    # Made the default, it cannot be deleted.
    post(browser, f"/admin/templates/{template_id}/default", token)
    with session_maker() as session:
        assert session.get(Template, template_id).is_default  # type: ignore[union-attr]
    post(browser, f"/admin/templates/{template_id}/delete", token)
    assert "The default template cannot be deleted" in browser.get("/admin/templates").text

    # A template in use by a campaign cannot be deleted either.
    second = post(
        browser,
        "/admin/templates/new",
        token,
        name="Second",
        type="campaign",
        body='<div>{{ template "content" . }}</div>',
    )
    other_id = int(second.headers["location"].rsplit("/", 1)[1])
    campaign_id = create_campaign(browser, token, list_ids[0], template_id=str(other_id))
    post(browser, f"/admin/templates/{other_id}/delete", token)
    assert "is used by 1 campaigns" in browser.get("/admin/templates").text
    post(browser, f"/admin/campaigns/{campaign_id}/delete", token)
    gone = browser.get(f"/admin/campaigns/{campaign_id}/progress")
    assert gone.status_code == 200 and "hx-trigger" not in gone.text
    post(browser, f"/admin/templates/{other_id}/delete", token)
    with session_maker() as session:
        assert session.get(Template, other_id) is None

    # Editing keeps the type; an empty body is refused.
    refused = post(
        browser, f"/admin/templates/{template_id}", token, name="Renamed", type="tx", body=" "
    )
    assert refused.status_code == 400
    post(
        browser,
        f"/admin/templates/{template_id}",
        token,
        name="Renamed",
        type="tx",
        body='<p>{{ template "content" . }}</p>',
    )
    with session_maker() as session:
        template = session.get(Template, template_id)
        assert template is not None and template.name == "Renamed" and template.type == "campaign"
    assert csrf_of(browser.get(f"/admin/templates/{template_id}").text)


def test_schedule_and_unschedule(
    browser: TestClient, list_ids: list[int], session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    campaign_id = create_campaign(browser, token, list_ids[0])
    # Without a send time the page offers no "Schedule".
    assert (
        'name="status" value="scheduled"' not in browser.get(f"/admin/campaigns/{campaign_id}").text
    )
    refused = post(
        browser,
        f"/admin/campaigns/{campaign_id}",
        token,
        name="Spring news",
        subject="s",
        lists=str(list_ids[0]),
        content_type="html",
        body="<p>x</p>",
        send_at="next tuesday",
    )
    assert refused.status_code == 400 and "Give a date and time (UTC)." in refused.text
    post(
        browser,
        f"/admin/campaigns/{campaign_id}",
        token,
        name="Spring news",
        subject="s",
        lists=str(list_ids[0]),
        content_type="html",
        body="<p>x</p>",
        send_at="2031-05-06T07:08",
    )
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    assert 'name="status" value="scheduled"' in page
    post(browser, f"/admin/campaigns/{campaign_id}/status", token, status="scheduled")
    with session_maker() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "scheduled"
        assert campaign.send_at is not None
        assert campaign.send_at.strftime("%Y-%m-%d %H:%M") == "2031-05-06 07:08"
    page = browser.get(f"/admin/campaigns/{campaign_id}").text
    assert "The campaign is scheduled." in page and "Unschedule" in page
    post(browser, f"/admin/campaigns/{campaign_id}/status", token, status="draft")
    with session_maker() as session:
        assert session.get(Campaign, campaign_id).status == "draft"  # type: ignore[union-attr]


def test_a_content_check_that_cannot_run_says_why(
    browser: TestClient, list_ids: list[int], session_maker: sessionmaker[Session]
) -> None:
    token = sign_in(browser)
    campaign_id = create_campaign(browser, token, list_ids[0])
    with session_maker() as session:
        # Sending settings stored before they were validated (an older version, a hand edit).
        session.merge(Setting(key="smtp", value=[{"enabled": True, "port": "many"}]))
        session.commit()
    page = browser.get(f"/admin/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert "The content check could not run: the sending settings cannot work" in page.text


def test_pages_have_no_inline_script_or_style_and_no_external_asset(
    browser: TestClient, list_ids: list[int]
) -> None:
    token = sign_in(browser)
    campaign_id = create_campaign(browser, token, list_ids[0])
    template = post(
        browser, "/admin/templates/new", token, name="T", type="tx", subject="s", body="<p>x</p>"
    )
    for path in (
        "/admin/campaigns",
        "/admin/campaigns/new",
        f"/admin/campaigns/{campaign_id}",
        f"/admin/campaigns/{campaign_id}/stats",
        "/admin/templates",
        "/admin/templates/new?type=tx",
        template.headers["location"],
    ):
        html = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        # In a tag (the escaped XSS list name has the words, as text).
        assert not re.search(r"<style|<[^>]*\s(?:style|on[a-z]+)=", html), path
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#")) and not url.startswith("//"), (path, url)
