"""The Campaigns and Templates pages in Debian's Chromium (Playwright), against the real server
with its campaign sender running and mail going to a real aiosmtpd sink.

The whole path of a campaign: create a template and preview it, create a campaign with the
rich-text editor (Quill, under the strict CSP), see the live preview, convert the body between
formats, send a test, start it, watch it finish on the list (htmx polling), and read its
statistics; then pause, resume and cancel one on the shared server (no sender there, so it stays
running). Every page fails the test on any console error (conftest.page).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from sending.conftest import Sink
from web.ui.conftest import Server, shot

pytestmark = pytest.mark.integration
# Without Playwright the browser fixtures skip; so does this module.
expect = pytest.importorskip("playwright.sync_api", reason="playwright is absent").expect


@pytest.fixture(scope="module")
def sender_server(make_server: Callable[..., Server]) -> Server:
    """A server of its own, with the campaign sender running."""
    return make_server(sender=True)


def make_list(server: Server, subscribers: list[str]) -> dict[str, Any]:
    with server.api() as api:
        made = api.post(
            "/api/lists",
            json={"name": f"Readers {time.monotonic_ns()}", "type": "private", "optin": "single"},
        )
        assert made.status_code == 200, made.text
        mlist: dict[str, Any] = made.json()["data"]
        for address in subscribers:
            added = api.post(
                "/api/subscribers",
                json={
                    "email": address,
                    "name": address.split("@")[0].title(),
                    "lists": [mlist["id"]],
                    "preconfirm_subscriptions": True,
                },
            )
            assert added.status_code == 200, added.text
    return mlist


def sign_in(page: Any, server: Server, name: str) -> None:
    username, password = server.make_admin(name)
    page.goto("/admin/login")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")


def wait_for_mail(sink: Sink, address: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.handler.by_recipient(address)) < count:
        assert time.monotonic() < deadline, f"no message {count} to {address}"
        time.sleep(0.2)


def test_template_and_campaign_from_rich_text_to_finished_stats(
    new_context: Callable[..., Any], sender_server: Server, smtp_sink: Sink
) -> None:
    readers = ["ada@example.com", "grace@example.com", "linus@example.com"]
    mlist = make_list(sender_server, readers)
    with sender_server.api() as api:
        saved = api.put("/api/settings", json={"smtp": smtp_sink.smtp_settings()})
        assert saved.status_code == 200, saved.text
    page = new_context(sender_server).new_page()
    sign_in(page, sender_server, "campaigner")

    # A campaign template, previewed in its sandboxed frame.
    page.goto("/admin/templates")
    page.get_by_role("link", name="New campaign template").click()
    page.get_by_label("Template name").fill("Branded")
    page.get_by_label("Body").fill(
        '<html><body><h1 class="brand">Acme Letters</h1>{{ template "content" . }}'
        "<footer>Acme Inc.</footer></body></html>"
    )
    page.get_by_role("button", name="Create template").click()
    page.wait_for_selector("text=The template was created.")
    frame = page.frame_locator("#preview-frame")
    assert frame.locator("h1").inner_text() == "Acme Letters"
    assert "sample campaign content" in frame.locator("body").inner_text()
    assert page.get_attribute("#preview-frame", "sandbox") == ""
    shot(page, "template-editor")
    page.goto("/admin/templates")
    shot(page, "templates")

    # A campaign written in the rich-text editor.
    page.goto("/admin/campaigns")
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Spring issue")
    page.get_by_label("Subject").fill("Spring is here")
    page.get_by_label(mlist["name"]).check()
    page.get_by_label("Template").select_option(label="Branded")
    assert page.get_by_label("Format").input_value() == "richtext"
    editor = page.locator("#rich-editor .ql-editor")
    editor.click()
    page.keyboard.type("Hello readers, ")
    page.keyboard.press("Control+b")
    page.keyboard.type("bold news")
    # The textarea the form submits follows the editor.
    assert "<strong>bold news</strong>" in page.locator("#f-body").input_value()
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_selector("text=The campaign was created.")
    campaign_url = page.url
    campaign_id = int(campaign_url.rsplit("/", 1)[1])

    # The saved campaign: the editor holds the body, the preview renders it in the template.
    assert "bold news" in page.locator("#rich-editor .ql-editor").inner_text()
    frame = page.frame_locator("#preview-frame")
    assert frame.locator("strong").inner_text() == "bold news"
    assert frame.locator("h1").inner_text() == "Acme Letters"
    # Typing re-renders the preview (unsaved).
    page.locator("#rich-editor .ql-editor").click()
    page.keyboard.press("End")
    page.keyboard.type(" and more")
    frame.locator("text=bold news and more").wait_for()
    # Converting to Markdown and back goes through the content-format service.
    page.get_by_label("Format").select_option("markdown")
    expect(page.locator("#f-body")).to_have_value(re.compile(r"\*\*bold news and more\*\*"))
    assert page.locator("#rich-editor").is_hidden()
    page.get_by_label("Format").select_option("richtext")
    page.locator("#rich-editor .ql-editor strong").wait_for()
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=The campaign was saved.")
    shot(page, "campaign-editor")

    # A test send reaches the SMTP server.
    page.get_by_label("Addresses").fill(readers[0])
    page.get_by_role("button", name="Send test").click()
    page.wait_for_selector(f"text=Test sent to {readers[0]}.")
    wait_for_mail(smtp_sink, readers[0], 1)

    # Start, behind the confirmation that shows the content check.
    assert page.locator("#content-report").is_visible()
    page.locator("summary", has_text="Start").click()
    page.locator(".confirm-body").get_by_role("button", name="Start").click()
    page.wait_for_selector("text=The campaign is running.")
    for address in readers:
        wait_for_mail(smtp_sink, address, 2 if address == readers[0] else 1)

    # The list polls the running campaign's progress until it has finished.
    page.goto("/admin/campaigns")
    page.wait_for_selector(f'#progress-{campaign_id}[data-status="finished"]', timeout=60_000)
    assert "3 of 3" in page.inner_text(f"#progress-{campaign_id}")
    shot(page, "campaigns")

    # Its statistics.
    page.goto(f"/admin/campaigns/{campaign_id}/stats")
    assert page.inner_text('[data-figure="sent"]') == "3"
    assert page.inner_text('[data-figure="failed"]') == "0"
    page.wait_for_selector("canvas[data-chart-ready]")
    shot(page, "campaign-stats")

    # A phone-sized screen: the list stacks into labelled rows.
    phone = new_context(sender_server, viewport={"width": 390, "height": 844}).new_page()
    sign_in(phone, sender_server, "campaigner-phone")
    phone.goto("/admin/campaigns")
    assert phone.locator("td[data-label='Status']").first.is_visible()
    shot(phone, "campaigns-phone")


def test_pause_resume_and_cancel(new_context: Callable[..., Any], ui_server: Server) -> None:
    page = new_context().new_page()
    mlist = make_list(ui_server, ["pat@example.com"])
    with ui_server.api() as api:
        made = api.post(
            "/api/campaigns",
            json={
                "name": "Held issue",
                "subject": "Held",
                "lists": [mlist["id"]],
                "content_type": "richtext",
                # Inline styles, as other editors write them: the CSP would refuse them to the
                # rich-text editor, which would drop them, so the body stays in the text area.
                "body": '<p><span style="color: rgb(230, 0, 0);">Red words</span> plain</p>',
            },
        )
        assert made.status_code == 200, made.text
        campaign_id = made.json()["data"]["id"]
    sign_in(page, ui_server, "pauser")
    page.goto(f"/admin/campaigns/{campaign_id}")
    page.locator("#rich-notice").wait_for()
    assert page.locator("#rich-editor").is_hidden()
    assert "color: rgb(230, 0, 0)" in page.locator("#f-body").input_value()
    for summary, button, done in (
        ("Start", "Start", "The campaign is running."),
        ("Pause", "Pause", "The campaign is paused."),
        ("Resume", "Resume", "The campaign is running."),
        ("Cancel", "Cancel", "The campaign was cancelled."),
    ):
        page.locator("summary", has_text=summary).click()
        page.locator("details[open] .confirm-body").get_by_role("button", name=button).click()
        page.wait_for_selector(f"text={done}")
        if summary == "Start":
            # No sender runs on this server: the campaign stays running and the list keeps
            # polling its progress (htmx, with the CSRF header from app.js).
            page.goto("/admin/campaigns")
            with page.expect_response(f"**/admin/campaigns/{campaign_id}/progress") as polled:
                pass
            assert polled.value.status == 200
            assert page.get_attribute(f"#progress-{campaign_id}", "data-status") == "running"
            page.goto(f"/admin/campaigns/{campaign_id}")
    assert page.inner_text("#campaign-status") == "Cancelled"
    assert page.locator("summary", has_text="Start").count() == 0
    with ui_server.api() as api:
        assert api.get(f"/api/campaigns/{campaign_id}").json()["data"]["status"] == "cancelled"

    # The same campaign in Chinese (the browser asks for it).
    chinese = new_context(locale="zh-CN").new_page()
    sign_in(chinese, ui_server, "pauser-zh")
    chinese.goto(f"/admin/campaigns/{campaign_id}")
    assert chinese.inner_text("#campaign-status") == "已取消"
    assert chinese.get_by_role("heading", name="发送测试邮件").is_visible()
    shot(chinese, "campaign-zh")
