"""The subscriber-facing pages in Debian's Chromium (Playwright) against the real server with
its campaign sender running, mail going to a real aiosmtpd sink.

The whole double opt-in path: sign up on the hosted form (through a typo suggestion), receive
the confirmation mail, follow its link and confirm, receive a campaign, use the preferences
page from the campaign's link, and wipe. Every page fails the test on any console error
(conftest.page), so each also runs clean under the Content-Security-Policy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sending.conftest import Sink
from web.ui.conftest import Server, shot

pytestmark = pytest.mark.integration


def wait_for_mail(sink: Sink, address: str, count: int, timeout: float = 60.0) -> Any:
    """The `count`-th message to `address`, waiting for the sender to deliver it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sink.handler.by_recipient(address)
        if len(found) >= count:
            return found[count - 1].message
        time.sleep(0.2)
    raise AssertionError(f"no message {count} to {address} within {timeout} s")


def link_in(message: Any, pattern: str) -> str:
    body = message.get_body(("html", "plain")).get_content()
    found = re.search(pattern, body)
    assert found is not None, body[:2000]
    return found.group(0).replace("&amp;", "&")


def assert_boxes_beside_their_labels(page: Any) -> None:
    """Every checkbox and radio button of the page sits on the first line of its label, to
    its left (a long label wraps beside the box, never under it), and the boxes of one group
    are evenly and closely spaced."""
    rows = page.locator(".check")
    assert rows.count() >= 4
    tops = []
    for index in range(rows.count()):
        box = rows.nth(index).locator("input").bounding_box()
        label = rows.nth(index).locator("label").bounding_box()
        assert box is not None and label is not None
        assert box["x"] + box["width"] <= label["x"], (index, box, label)
        assert abs(box["y"] - label["y"]) < 8, (index, box, label)
        tops.append(box["y"])
    # The unsubscribe form's radio buttons: one short line apart.
    assert 0 < tops[1] - tops[0] < 40, tops
    data = page.locator("section", has=page.locator("#h-data"))
    export = data.locator("form").first.bounding_box()
    wipe = data.locator("details").bounding_box()
    assert export is not None and wipe is not None
    assert wipe["y"] >= export["y"] + export["height"] + 8


@pytest.fixture(scope="module")
def sender_server(make_server: Callable[..., Server]) -> Server:
    """A server of its own, with the campaign sender running (polling every few seconds)."""
    return make_server(sender=True)


def setup_server(server: Server, sink: Sink, **settings: Any) -> dict[str, Any]:
    with server.api() as api:
        made = api.post(
            "/api/lists",
            json={"name": f"Newsletter {time.monotonic_ns()}", "type": "public", "optin": "double"},
        )
        assert made.status_code == 200, made.text
        answer = api.put(
            "/api/settings",
            json={
                "smtp": sink.smtp_settings(),
                "verify.on_subscribe": "flag",
                "app.site_name": "Acme Letters",
                "appearance.public.custom_css": ".public .card { border-top: 4px solid #1f5fbf; }",
                **settings,
            },
        )
        assert answer.status_code == 200, answer.text
    data: dict[str, Any] = made.json()["data"]
    return data


def test_double_optin_campaign_preferences_and_wipe(
    new_context: Callable[..., Any], sender_server: Server, smtp_sink: Sink
) -> None:
    mlist = setup_server(sender_server, smtp_sink)
    page = new_context(sender_server).new_page()
    page.goto(f"/subscription/form?l={mlist['uuid']}")
    shot(page, "public-form")
    page.get_by_label("E-mail address").fill("reader@gmial.com")
    page.get_by_label("Name (optional)").fill("Robin Reader")
    page.get_by_role("button", name="Subscribe").click()
    # A likely typo: the form comes back with the fix as a one-click choice.
    page.wait_for_selector(".suggestion")
    assert "Did you mean reader@gmail.com?" in page.inner_text(".suggestion")
    shot(page, "public-form-typo")
    page.get_by_role("button", name="Yes, use reader@gmail.com").click()
    page.wait_for_selector("text=Thank you")
    shot(page, "public-subscribed")

    confirmation = wait_for_mail(smtp_sink, "reader@gmail.com", 1)
    optin = link_in(confirmation, r"http://[^\"'\s<>]+/subscription/optin/[^\"'\s<>]+")
    page.goto(optin)
    assert mlist["name"] in page.inner_text("main")
    shot(page, "public-optin")
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_selector("text=is now subscribed to")

    with sender_server.api() as api:
        created = api.post(
            "/api/campaigns",
            json={
                "name": "First issue",
                "subject": "Issue 1",
                "lists": [mlist["id"]],
                "content_type": "html",
                "body": (
                    "<p>Hello {{ .Subscriber.FirstName }}</p>"
                    '<p><a href="{{ ManageURL }}">Manage</a> · '
                    '<a href="{{ UnsubscribeURL }}">Unsubscribe</a></p>'
                ),
            },
        )
        assert created.status_code == 200, created.text
        campaign = created.json()["data"]
        started = api.put(f"/api/campaigns/{campaign['id']}/status", json={"status": "running"})
        assert started.status_code == 200, started.text
    issue = wait_for_mail(smtp_sink, "reader@gmail.com", 2)
    assert issue["Subject"] == "Issue 1"
    assert "Hello Robin" in issue.get_body(("html",)).get_content()
    manage = link_in(issue, r"http://[^\"'\s<>]+\?manage=true")

    page.goto(manage)
    shot(page, "public-preferences")
    assert_boxes_beside_their_labels(page)
    page.get_by_label("Name", exact=True).fill("Robin R.")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_selector("text=Your preferences have been saved.")
    with sender_server.api() as api:
        found = api.get(
            "/api/subscribers", params={"query": "subscribers.email = 'reader@gmail.com'"}
        )
        assert [s["name"] for s in found.json()["data"]["results"]] == ["Robin R."]

    # The archive shows the campaign in a sandboxed frame.
    with sender_server.api() as api:
        archived = api.put(
            f"/api/campaigns/{campaign['id']}/archive",
            json={
                "archive": True,
                "archive_slug": "first-issue",
                "archive_meta": {"name": "Reader"},
            },
        )
        assert archived.status_code == 200, archived.text
    page.goto("/archive")
    page.get_by_role("link", name="Issue 1").click()
    page.wait_for_selector("iframe.archive-frame")
    frame = page.frame_locator("iframe.archive-frame")
    assert "Hello Reader" in frame.locator("body").inner_text()
    shot(page, "public-archive")

    page.goto(manage)
    page.locator("summary", has_text="Delete my data").click()
    page.get_by_role("button", name="Delete everything").click()
    page.wait_for_selector("text=Your data has been deleted")
    shot(page, "public-wiped")
    with sender_server.api() as api:
        gone = api.get(
            "/api/subscribers", params={"query": "subscribers.email = 'reader@gmail.com'"}
        )
        assert gone.json()["data"]["results"] == []
    # The old link now finds nobody.
    page.goto(manage)
    assert "This link is not valid" in page.inner_text("main")


def test_form_in_chinese_and_on_a_phone(
    new_context: Callable[..., Any], sender_server: Server, smtp_sink: Sink
) -> None:
    setup_server(sender_server, smtp_sink)
    page = new_context(
        sender_server,
        locale="zh-CN",
        headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        viewport={"width": 390, "height": 800},
    ).new_page()
    page.goto("/subscription/form")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("button", name="订阅").is_visible()
    shot(page, "public-form-zh")


def test_captcha_widget_solves_under_the_csp(
    new_context: Callable[..., Any], sender_server: Server, smtp_sink: Sink
) -> None:
    mlist = setup_server(
        sender_server,
        smtp_sink,
        **{"security.captcha": {"altcha": {"enabled": True, "complexity": 5000}}},
    )
    try:
        page = new_context(sender_server).new_page()
        page.goto(f"/subscription/form?l={mlist['uuid']}")
        page.get_by_label("E-mail address").fill("captcha-user@example.org")
        # The widget solves the proof of work by itself (auto="onload") in its worker.
        solution = page.locator("input[name=altcha]")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if solution.count() and len(solution.first.input_value()) > 20:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the captcha widget did not solve its challenge")
        shot(page, "public-form-captcha")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_selector("text=Thank you")
        # Without JavaScript the form explains itself, and a post without the solution fails.
        answer = httpx.post(
            f"{sender_server.base_url}/subscription/form",
            data={"email": "nojs@example.org", "l": mlist["uuid"]},
        )
        assert answer.status_code == 400 and "JavaScript" in answer.text
    finally:
        with sender_server.api() as api:
            api.put("/api/settings", json={"security.captcha": {"altcha": {"enabled": False}}})
