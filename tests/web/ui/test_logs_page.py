"""The Logs page and listmonk's GET /api/logs: recent lines of this process, by level, escaped;
`settings:maintain` on both."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stmails import logs
from web.ui.helpers import ORIGIN, make_user, post_form, sign_in

PAYLOAD = '<script>alert("log")</script> subscriber@example.org'


@pytest.fixture
def browser(app: FastAPI, client: TestClient) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, base_url=ORIGIN)


def test_recent_lines_keep_the_newest_and_filter_by_level() -> None:
    recent = logs.RecentLines(capacity=3)
    logger = logging.getLogger("stmails.test.recent")
    logger.addHandler(recent)
    logger.setLevel(logging.DEBUG)
    try:
        for n in range(4):
            logger.info("line %d\nforged line", n)
        logger.warning("careful")
    finally:
        logger.removeHandler(recent)
    lines = recent.lines()
    assert len(lines) == 3 and "line 1" not in "".join(lines)
    assert lines[0].endswith("line 2\\nforged line") and " INFO stmails.test.recent " in lines[0]
    assert [line.rsplit(" ", 1)[-1] for line in recent.lines(logging.WARNING)] == ["careful"]
    assert recent.lines(limit=1) == lines[-1:]


def test_api_logs_in_listmonks_shape(client: TestClient) -> None:
    logging.getLogger("stmails.test").warning("api logs %s", PAYLOAD)
    answer = client.get("/api/logs")
    assert answer.status_code == 200
    lines = answer.json()["data"]
    assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
    assert any(PAYLOAD in line for line in lines)
    errors = client.get("/api/logs", params={"level": "error"}).json()["data"]
    assert not any(PAYLOAD in line for line in errors)
    assert client.get("/api/logs", params={"level": "loud"}).status_code == 400
    make_user(client, "nolog", "bounces:get")
    assert client.get("/api/logs", auth=("nolog", "a-good-password-1")).status_code == 403


def test_logs_page_shows_lines_escaped_and_refreshes(
    client: TestClient, browser: TestClient
) -> None:
    sign_in(browser)
    logging.getLogger("stmails.test").warning("page logs %s", PAYLOAD)
    page = browser.get("/admin/logs")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#34;log&#34;)&lt;/script&gt;" in page.text
    assert '<script>alert("log")' not in page.text
    assert 'hx-get="/admin/logs/lines"' in page.text and 'hx-trigger="every 5s"' in page.text
    fragment = browser.get("/admin/logs/lines", params={"level": "warning"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "page logs &lt;script&gt;" in fragment.text
    assert "page logs" not in browser.get("/admin/logs", params={"level": "error"}).text
    assert browser.get("/admin/logs", params={"level": "loud"}).status_code == 400


def test_logs_page_needs_settings_maintain(client: TestClient, browser: TestClient) -> None:
    make_user(client, "settingsreader", "settings:get")
    sign_in(browser, "settingsreader", "a-good-password-1")
    assert browser.get("/admin/logs").status_code == 403
    assert browser.get("/admin/logs/lines").status_code == 403
    assert 'href="/admin/logs"' not in browser.get("/admin/").text


def test_actions_of_the_pages_are_logged_and_shown(
    client: TestClient, browser: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stmails.web.admin")
    token = sign_in(browser)
    added = post_form(browser, "/admin/suppression/add", token, {"target": "gone@example.org"})
    assert added.status_code == 303
    entry = client.get("/api/suppressions/gone@example.org").json()["data"]["results"][0]
    assert post_form(browser, f"/admin/suppression/{entry['id']}/remove", token).status_code == 303
    shown = browser.get("/admin/logs/lines", params={"level": "info"}).text
    assert "admin admin added or updated 1 suppressions" in shown
    assert f"admin admin removed suppression {entry['id']}" in shown
