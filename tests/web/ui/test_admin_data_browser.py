"""Bounces, Suppression list, Users and roles, and Logs in a real browser against the real
server: XSS payloads from mail shown inert, suppressions added and removed (one and many), a
user made with a role who then signs in within it, the logs page showing a line just logged
(and refreshing itself). The `page` fixture fails on any console error."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from web.ui.conftest import Server, free_port, shot
from web.ui.test_browser import log_in, new_user

pytestmark = pytest.mark.integration

PAYLOAD = '"><img src=x onerror=alert(1)><script>alert("b")</script>'


def _signed_in(page: Any, server: Server, prefix: str) -> None:
    username, password = new_user(server, prefix)
    log_in(page, username, password)
    page.wait_for_url("**/admin/")


def _watch_dialogs(page: Any) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_bounces_show_mail_text_inert(page: Any, ui_server: Server) -> None:
    marker = f"inert{free_port()}.example"
    with ui_server.api() as api:
        made = api.post(
            "/webhooks/bounce",
            json={
                "email": f"victim@{marker}",
                "source": "api",
                "type": "hard",
                "reason": "hostunknown",
                "diagnostic": PAYLOAD,
                "meta": {"raw": f"Subject: x\r\n\r\n{PAYLOAD}</pre>"},
            },
        )
        assert made.status_code == 200, made.text
    dialogs = _watch_dialogs(page)
    _signed_in(page, ui_server, "bouncer")
    page.get_by_role("link", name="Bounces").first.click()
    page.wait_for_url("**/admin/bounces")
    page.get_by_label("Domain").fill(marker)
    page.get_by_label("Type").select_option("hard")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*domain=inert.*"))
    table = page.get_by_role("table", name="Bounces")
    assert f"victim@{marker}" in table.inner_text()
    assert table.locator("tbody tr").count() == 1
    assert table.locator("img, script").count() == 0
    shot(page, "bounces")
    table.locator("tbody a").first.click()
    page.wait_for_url(re.compile(r".*/admin/bounces/\d+$"))
    raws = page.locator("pre.raw")
    assert raws.count() == 2
    assert PAYLOAD in raws.nth(0).inner_text()
    assert f"{PAYLOAD}</pre>" in raws.nth(1).inner_text()
    assert page.locator("main img, main script").count() == 0
    assert "hostunknown" in page.locator("dl.facts").inner_text()
    shot(page, "bounce")
    # The export is the API's CSV of the same filters, downloaded with the session.
    page.goto(f"/admin/bounces?domain={marker}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"victim@{marker}" in text and text.startswith("id,created_at,email")
    assert not dialogs


def test_bounces_on_a_phone(new_context: Callable[..., Any], ui_server: Server) -> None:
    page = new_context(viewport={"width": 375, "height": 740}, is_mobile=True).new_page()
    _signed_in(page, ui_server, "phone")
    page.goto("/admin/bounces")
    assert page.get_by_role("heading", name="Bounces", level=1).is_visible()
    # Nothing wider than the screen: the table stacks into labelled rows.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "bounces-phone")


def test_add_and_remove_suppressions(page: Any, ui_server: Server) -> None:
    domain = f"supp{free_port()}.example"
    _signed_in(page, ui_server, "suppressor")
    page.goto("/admin/suppression")
    page.get_by_label("Address or domain", exact=True).fill(f"one@{domain}")
    page.locator("#a-reason").select_option("complaint")
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_selector(".flash-success")
    assert "Entries added or updated: 1." in page.locator(".flashes").inner_text()
    page.get_by_label("Addresses or domains, one a line").fill(f"two@{domain}\nthree@{domain}\n")
    page.get_by_role("button", name="Add all").click()
    page.wait_for_selector(".flash-success")
    page.get_by_label("Address or domain contains").fill(domain)
    page.get_by_role("button", name="Search").click()
    table = page.get_by_role("table", name="Suppression list")
    assert table.locator("tbody tr").count() == 3
    shot(page, "suppression")
    with ui_server.api() as api:
        assert api.get(f"/api/suppressions/two@{domain}").json()["data"]["suppressed"]
    row = table.locator("tbody tr", has_text=f"two@{domain}")
    row.locator("summary", has_text="Remove").click()
    row.get_by_role("button", name="Remove").click()
    page.wait_for_selector(".flash-success")
    assert "The entry was removed." in page.locator(".flashes").inner_text()
    with ui_server.api() as api:
        assert api.get(f"/api/suppressions/two@{domain}").status_code == 404
        assert api.get(f"/api/suppressions/one@{domain}").json()["data"]["suppressed"]


def test_create_a_user_with_a_role_and_sign_in_as_it(
    new_context: Callable[..., Any], ui_server: Server
) -> None:
    page = new_context().new_page()
    suffix = free_port()
    role_name, username = f"Bounce desk {suffix}", f"desk{suffix}"
    _signed_in(page, ui_server, "usermaker")
    page.goto("/admin/roles")
    form = page.locator("form", has=page.locator("#r-name"))
    form.get_by_label("Name").fill(role_name)
    form.get_by_label("bounces:get").check()
    form.get_by_label("bounces:manage").check()
    page.get_by_role("button", name="Create role").click()
    page.wait_for_selector(".flash-success")
    shot(page, "roles")
    page.goto("/admin/users")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password (password login)").fill("desk-password-1")
    page.get_by_label("Role", exact=True).select_option(label=role_name)
    page.get_by_role("button", name="Create user").click()
    page.wait_for_selector(".flash-success")
    assert username in page.get_by_role("table", name="Users").inner_text()
    shot(page, "users")

    desk = new_context().new_page()
    log_in(desk, username, "desk-password-1")
    desk.wait_for_url("**/admin/")
    nav = desk.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Bounces").count() == 1
    assert nav.get_by_role("link", name="Users").count() == 0
    desk.goto("/admin/bounces")
    assert desk.get_by_role("heading", name="Bounces", level=1).is_visible()
    refused = desk.goto("/admin/users")
    assert refused is not None and refused.status == 403


def test_api_user_token_shown_once(page: Any, ui_server: Server) -> None:
    username = f"robot{free_port()}"
    _signed_in(page, ui_server, "apimaker")
    page.goto("/admin/users")
    page.get_by_label("Kind").select_option("api")
    page.get_by_label("User name").fill(username)
    page.get_by_role("button", name="Create user").click()
    token = page.locator("#api-token").inner_text().strip()
    assert len(token) >= 16
    shot(page, "api-token")
    with ui_server.api() as api:
        assert api.get("/api/lists", auth=(username, token)).status_code == 200


def test_logs_page_shows_a_line_just_logged(page: Any, ui_server: Server) -> None:
    _signed_in(page, ui_server, "logreader")
    first, second = free_port(), free_port()
    with ui_server.api() as api:
        failed = api.post(
            "/api/settings/smtp/test",
            json={"host": "127.0.0.1", "port": first, "email": "logs@example.org"},
        )
        assert failed.status_code in (400, 422), failed.text
    page.goto("/admin/logs")
    lines = page.locator("#log-lines")
    if failed.status_code == 422:
        assert f"SMTP test of 127.0.0.1:{first} failed" in lines.inner_text()
    shot(page, "logs")
    # A line logged after the page opened appears without reloading (htmx refresh).
    with ui_server.api() as api:
        api.post(
            "/api/settings/smtp/test",
            json={"host": "127.0.0.1", "port": second, "email": "logs@example.org"},
        )
    page.wait_for_function(
        "port => document.querySelector('#log-lines').textContent.includes(':' + port + ' failed')",
        arg=str(second),
        timeout=15_000,
    )
    page.get_by_label("Level and above").select_option("error")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/admin/logs?level=error")
    assert f"127.0.0.1:{second} failed" not in page.locator("#log-lines").inner_text()


def test_pages_in_chinese(new_context: Callable[..., Any], ui_server: Server) -> None:
    page = new_context(locale="zh-CN").new_page()
    username, password = new_user(ui_server, "zh")
    page.goto("/admin/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/admin/")
    for path, heading in (
        ("/admin/suppression", "抑制列表"),
        ("/admin/users", "用户"),
        ("/admin/logs", "日志"),
    ):
        page.goto(path)
        assert page.locator("main h1").inner_text() == heading, path
    page.goto("/admin/bounces")
    shot(page, "bounces-zh")


def test_delete_ticked_bounces(page: Any, ui_server: Server) -> None:
    marker = f"tick{free_port()}.example"
    with ui_server.api() as api:
        for n in range(3):
            made = api.post(
                "/webhooks/bounce",
                json={"email": f"t{n}@{marker}", "source": "api", "type": "soft"},
            )
            assert made.status_code == 200, made.text
    _signed_in(page, ui_server, "ticker")
    page.goto(f"/admin/bounces?domain={marker}")
    table = page.get_by_role("table", name="Bounces")
    table.locator("tbody tr", has_text=f"t0@{marker}").get_by_role("checkbox").check()
    table.locator("tbody tr", has_text=f"t1@{marker}").get_by_role("checkbox").check()
    page.locator("summary", has_text="Delete selected").click()
    page.get_by_role("button", name="Delete them").click()
    page.wait_for_selector(".flash-success")
    assert "Bounces deleted: 2." in page.locator(".flashes").inner_text()
    assert page.url.endswith(f"/admin/bounces?domain={marker}")
    rows = page.get_by_role("table", name="Bounces").locator("tbody tr")
    assert rows.count() == 1 and f"t2@{marker}" in rows.inner_text()
