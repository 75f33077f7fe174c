"""The Subscribers, Lists, Import and Verification pages in a real browser (Chromium through
Playwright) against the real server: create a list, import a CSV onto it and watch the import
finish (htmx polling), find the subscribers, open one (its hostile name and attribute inert),
bulk-blocklist two behind the confirmation, verify an address; the phone layout and Chinese.
Any console error or uncaught exception fails the test (conftest.page)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from web.ui.conftest import Server, shot

from .test_browser import log_in, new_user

pytestmark = pytest.mark.integration

FILLER = 3000

HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"
# No double quote: JSON shows it as it is.
HOSTILE_ATTR = "<svg/onload=alert(document.domain)>"


def test_list_import_find_open_blocklist_verify(
    page: Any, ui_server: Server, new_context: Callable[..., Any]
) -> None:
    username, password = new_user(ui_server, "subs")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, username, password)
    tag = uuid.uuid4().hex[:8]

    # A list.
    page.goto("/admin/lists")
    page.get_by_label("Name").fill(f"Readers {tag}")
    page.get_by_label("Opt-in").select_option("double")
    page.get_by_label("Tags").fill("browser, test")
    page.get_by_role("button", name="Create list").click()
    page.wait_for_selector(".flash-success")
    assert f"Readers {tag}" in page.inner_text("h1")
    page.goto("/admin/lists")
    shot(page, "lists")

    # Import three subscribers onto it; the status panel follows the import by itself.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "attributes"])
    writer.writerow([f"ann.{tag}@example.com", f"Ann {tag}", json.dumps({"city": "Berlin"})])
    writer.writerow([f"bob.{tag}@example.com", HOSTILE, json.dumps({"note": HOSTILE_ATTR})])
    writer.writerow([f"cy.{tag}@example.com", f"Cy {tag}", "{}"])
    # Enough rows for several committed chunks, so that the page usually opens while the
    # import runs and htmx brings the status up to date (their addresses do not hold `tag`).
    other = uuid.uuid4().hex[:8]
    for n in range(FILLER):
        writer.writerow([f"f{n}.{other}@example.com", f"F {n}", "{}"])
    csv_body = buffer.getvalue()
    page.goto("/admin/subscribers/import")
    page.set_input_files(
        "#f-file",
        files=[{"name": f"{tag}.csv", "mimeType": "text/csv", "buffer": csv_body.encode()}],
    )
    page.get_by_label(f"Readers {tag}").check()
    page.get_by_label("Subscription status").select_option("confirmed")
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url("**/admin/subscribers/import")
    page.wait_for_selector('[data-import-status="finished"]', timeout=60_000)
    total = FILLER + 3
    assert f"{total} of {total} rows imported." in page.inner_text("#import-status")
    # Once finished, the panel stops polling.
    assert page.locator("#import-status[hx-trigger]").count() == 0
    shot(page, "import")

    # Find them.
    page.goto("/admin/subscribers")
    page.get_by_label("Search").fill(tag)
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**/admin/subscribers?search={tag}*")
    assert page.locator("table.subscribers tbody tr").count() == 3
    shot(page, "subscribers")

    # Open the hostile one: its name and attribute are text.
    page.get_by_role("link", name=f"bob.{tag}@example.com").click()
    page.wait_for_selector("pre.attribs")
    assert HOSTILE_ATTR in page.inner_text("pre.attribs")
    assert HOSTILE in page.inner_text("dl.facts")
    assert page.locator("main img, main svg").count() == 0
    assert page.title() != "pwned" and not dialogs
    shot(page, "subscriber")

    # Bulk-blocklist two of them, behind the confirmation.
    page.goto(f"/admin/subscribers?search={tag}")
    page.get_by_label(f"Select ann.{tag}@example.com").check()
    page.get_by_label(f"Select cy.{tag}@example.com").check()
    page.get_by_label("Action", exact=True).select_option("blocklist")
    page.get_by_role("button", name="Continue…").click()
    assert "Blocklist 2 subscribers?" in page.inner_text("main")
    page.get_by_role("button", name="Yes, do it").click()
    page.wait_for_selector(".flash-success")
    assert "2 subscribers changed." in page.inner_text(".flashes")
    statuses = page.locator("table.subscribers tbody tr td:nth-child(4)").all_inner_texts()
    assert sorted(s.strip() for s in statuses) == ["blocklisted", "blocklisted", "enabled"]

    # Verify an address (offline stages).
    page.goto("/admin/verification")
    page.get_by_label("Email address").fill("postmaster@gmial.com")
    page.locator("form").filter(has=page.get_by_label("Email address")).get_by_label(
        "Offline stages only (no DNS)"
    ).check()
    page.get_by_role("button", name="Check", exact=True).click()
    page.wait_for_selector("[data-verdict]")
    assert page.get_attribute("[data-verdict]", "data-verdict") == "risky"
    assert "gmail.com" in page.inner_text(".verify-result")
    shot(page, "verification")

    # A list of addresses as a job: the progress panel follows it until the downloads appear.
    page.set_input_files(
        "#f-file",
        files=[
            {
                "name": "check.csv",
                "mimeType": "text/csv",
                "buffer": b"email\nann@example.com\nnot-an-address\nsales@example.com\n",
            }
        ],
    )
    page.locator("form").filter(has=page.locator("#f-file")).get_by_label(
        "Offline stages only (no DNS)"
    ).check()
    page.get_by_role("button", name="Start verification").click()
    page.wait_for_selector('[data-job-status="done"]', timeout=30_000)
    assert "3 of 3 addresses checked." in page.inner_text("#job-status")
    assert page.get_by_role("link", name="Download CSV").is_visible()

    # A subscriber made through the form.
    page.goto("/admin/subscribers/new")
    page.get_by_label("Email address").fill(f"dee.{tag}@example.com")
    page.get_by_label("Name").fill(f"Dee {tag}")
    page.get_by_label(f"Readers {tag}").check()
    page.get_by_label("Attributes (JSON)").fill('{"plan": "pro"}')
    page.get_by_role("button", name="Create subscriber").click()
    page.wait_for_selector(".flash-success")
    assert f"dee.{tag}@example.com" in page.inner_text("h1")
    assert '"plan": "pro"' in page.inner_text("pre.attribs")

    # A phone: the table stacks, nothing runs off the side.
    phone = new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    log_in(phone, username, password)
    phone.goto(f"/admin/subscribers?search={tag}")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone, "subscribers-phone")

    # Chinese.
    chinese = new_context(locale="zh-CN").new_page()
    log_in_zh(chinese, username, password)
    chinese.goto("/admin/subscribers")
    assert "订阅者" in chinese.inner_text("h1")
    chinese.goto("/admin/lists")
    assert "列表" in chinese.inner_text("h1")


def log_in_zh(page: Any, username: str, password: str) -> None:
    """Signs in through the login form shown in Chinese."""
    page.goto("/admin/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/admin/")
