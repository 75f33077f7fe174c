"""The Settings pages and the dashboard in Chromium, against a served stmails: bounce rules
changed in the page act on the next bounces posted to the webhook, the SMTP test button talks
to aiosmtpd with AUTH, the mailbox test button to Dovecot, and the dashboard changes when a
bounce arrives. Any console error fails a test (tests/web/ui/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ingest.mailbox.conftest import Mailbox, dovecot, mailbox  # noqa: F401
from ingest.mailbox.dovecot import PASSWORD, USER
from sending.conftest import MakeServer, certificate, smtp_server  # noqa: F401
from services.history import campaign, send, subscriber
from stmails.db.engine import make_engine, session_factory
from stmails.web.admin.settings import GROUPS
from web.ui.conftest import Server, shot


def sign_in(page: Any, server: Server) -> None:
    page.goto("/admin/login")
    page.get_by_label("User name").fill(server.admin[0])
    page.get_by_label("Password").fill(server.admin[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")


def field(page: Any, name: str) -> Any:
    return page.locator(f'[name="{name}"]')


def all_charts_drawn(page: Any) -> None:
    """Waits until every chart of the page is drawn (a locator wait: the page's CSP forbids
    the eval a string predicate would need)."""
    charts = page.locator("canvas[data-chart-src]").count()
    assert charts >= 6
    page.locator('canvas[data-chart-ready="true"]').nth(charts - 1).wait_for()
    assert page.locator('canvas[data-chart-ready="error"]').count() == 0


def subscriber_status(server: Server, email: str) -> str:
    with server.api() as api:
        found = api.get("/api/subscribers", params={"query": f"subscribers.email = '{email}'"})
        assert found.status_code == 200, found.text
        (row,) = found.json()["data"]["results"]
        return str(row["status"])


def test_bounce_rules_changed_in_the_page_act_on_the_next_bounces(
    new_context: Callable[..., Any], make_server: Callable[..., Server]
) -> None:
    server = make_server()
    context = new_context(server, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    sign_in(page, server)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.wait_for_url("**/admin/settings/general")
    tabs = page.get_by_role("navigation", name="Settings pages")
    tabs.get_by_role("link", name="Bounces").click()
    page.wait_for_url("**/admin/settings/bounces")
    assert field(page, "bounce.enabled").is_checked()
    # A count that cannot work is refused next to its field; nothing is stored.
    field(page, "bounce.actions.soft.count").fill("0")
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator('[id="e-f-bounce.actions.soft.count"]')
    assert "greater than or equal to 1" in error.inner_text()
    # One soft bounce is enough to blocklist the address.
    field(page, "bounce.actions.soft.count").fill("1")
    field(page, "bounce.actions.soft.action").select_option("blocklist")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".flash-success")
    assert field(page, "bounce.actions.soft.action").input_value() == "blocklist"
    assert server.base_url + "/webhooks/service/ses" in page.inner_text("main")
    # Each webhook URL has a button that copies it.
    ses = page.get_by_role("region", name="Amazon SES")
    ses.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        server.base_url + "/webhooks/service/ses"
    )
    shot(page, "settings-bounces")

    with server.api() as api:
        made = api.post("/api/subscribers", json={"email": "soft@example.com", "name": "Soft"})
        assert made.status_code == 200, made.text
        bounce = {"email": "soft@example.com", "source": "api", "type": "soft"}
        assert api.post("/webhooks/bounce", json=bounce).status_code == 200
    assert subscriber_status(server, "soft@example.com") == "blocklisted"


def test_the_smtp_test_button_against_aiosmtpd_with_auth(
    page: Any,
    ui_server: Server,
    smtp_server: MakeServer,  # noqa: F811
) -> None:
    smtp = smtp_server(tls="starttls", auth=True)
    (entry,) = smtp.smtp_settings()
    username, password = ui_server.make_admin("smtptester")
    page.goto("/admin/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    page.goto("/admin/settings/smtp")
    field(page, "smtp.0.host").fill(entry["host"])
    field(page, "smtp.0.port").fill(str(entry["port"]))
    field(page, "smtp.0.auth_protocol").select_option("login")
    field(page, "smtp.0.username").fill(entry["username"])
    field(page, "smtp.0.password").fill(entry["password"])
    field(page, "smtp.0.tls_type").select_option("STARTTLS")
    field(page, "smtp.0.tls_skip_verify").check()
    page.get_by_label("Send test messages to").fill("me@example.net")
    page.get_by_role("button", name="Send test").first.click()
    result = page.locator("[data-test-result]")
    result.wait_for()
    assert result.get_attribute("data-test-result") == "ok", result.inner_text()
    assert "250" in result.inner_text()
    assert len(smtp.handler.messages) == 1
    # The unsaved values stay in the form (the password does not come back).
    assert field(page, "smtp.0.port").input_value() == str(entry["port"])
    assert field(page, "smtp.0.password").input_value() == ""
    shot(page, "settings-smtp")


def test_the_mailbox_test_button_against_dovecot(
    page: Any,
    ui_server: Server,
    mailbox: Mailbox,  # noqa: F811
) -> None:
    username, password = ui_server.make_admin("boxtester")
    page.goto("/admin/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    page.goto("/admin/settings/bounces")
    field(page, "bounce.mailboxes.0.type").select_option("imap")
    field(page, "bounce.mailboxes.0.host").fill("127.0.0.1")
    field(page, "bounce.mailboxes.0.port").fill(str(mailbox.server.ports["imap"]))
    field(page, "bounce.mailboxes.0.tls_mode").select_option("none")
    field(page, "bounce.mailboxes.0.username").fill(USER)
    field(page, "bounce.mailboxes.0.password").fill("not-the-password")
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("[data-test-result]")
    result.wait_for()
    assert result.get_attribute("data-test-result") == "failed"
    field(page, "bounce.mailboxes.0.password").fill(PASSWORD)
    page.get_by_role("button", name="Test connection").first.click()
    page.wait_for_selector('[data-test-result="ok"]')
    assert "Connected and logged in" in page.locator("[data-test-result]").inner_text()
    shot(page, "settings-mailbox-test")


def test_the_dashboard_changes_when_a_bounce_arrives(
    new_context: Callable[..., Any], make_server: Callable[..., Server]
) -> None:
    server = make_server()
    engine = make_engine(f"sqlite:///{server.log.parent / 'stmails.db'}")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with session_factory(engine)() as session:
            assert isinstance(session, Session)
            news = campaign(session, "News")
            for number in range(20):
                reader = subscriber(session, f"r{number}@example.com")
                # Over three days, so that the daily charts have a line to draw.
                send(session, news, reader, "sent", "", at=now - timedelta(days=number % 3))
            news.status, news.to_send, news.sent = "running", 40, 20
            session.commit()
            news_uuid = news.uuid
    finally:
        engine.dispose()
    page = new_context(server).new_page()
    sign_in(page, server)
    assert page.locator('[data-figure="sent"]').inner_text() == "20"
    assert page.locator('[data-figure="bounce_rate"]').inner_text().startswith("0.00 %")
    assert "20 of 40 sent" in page.inner_text("#running-campaigns")
    all_charts_drawn(page)
    with server.api() as api:
        bounce = {
            "email": "r3@example.com",
            "campaign_uuid": news_uuid,
            "source": "api",
            "type": "hard",
            "diagnostic": "550 5.1.1 <r3@example.com>: user unknown",
        }
        assert api.post("/webhooks/bounce", json=bounce).status_code == 200
    page.reload()
    assert page.locator('[data-figure="bounce_rate"]').inner_text().startswith("5.00 %")
    assert page.locator(".figure.level-critical").count() == 1
    page.wait_for_selector('canvas[data-chart-ready="true"]')
    assert "r3@example.com" in page.get_by_role("table", name="Recent bounces").inner_text()
    page.get_by_label("Period").select_option("7")
    page.wait_for_url("**/admin/?days=7")
    assert page.locator('[data-figure="bounce_rate"]').inner_text().startswith("5.00 %")
    all_charts_drawn(page)
    shot(page, "dashboard-deliverability")


def test_settings_pages_tour_phone_and_chinese(
    new_context: Callable[..., Any], ui_server: Server
) -> None:
    username, password = ui_server.make_admin("settingstour")
    page = new_context(viewport={"width": 375, "height": 740}, is_mobile=True).new_page()
    page.goto("/admin/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    # Nothing is wider than a phone's screen, on the dashboard or any settings page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for group in GROUPS:
        page.goto(f"/admin/settings/{group.key}")
        assert page.locator("main h1").count() == 1, group.key
        assert page.get_by_role("main").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, group.key
    page.goto("/admin/settings/bounces")
    shot(page, "settings-phone")
    chinese = new_context(locale="zh-CN").new_page()
    chinese.goto("/admin/login")
    chinese.get_by_label("用户名").fill(username)
    chinese.get_by_label("密码").fill(password)
    chinese.get_by_role("button", name="登录").click()
    chinese.wait_for_url("**/admin/")
    assert chinese.get_by_role("heading", name="送达率").count() == 1
    chinese.goto("/admin/settings/bounces")
    assert chinese.get_by_role("heading", level=1).inner_text() == "设置"
    assert "启用退信处理" in chinese.inner_text("main")
    shot(chinese, "settings-bounces-zh")
