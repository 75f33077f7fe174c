"""Issue 11: `/docs` works offline. The page loads Swagger UI from the package, references no
other host, has no inline script, and renders the API in a real browser (Debian's Chromium)
under its Content-Security-Policy with every other host unreachable."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient


class _Page(HTMLParser):
    """The tags of a page, and the text inside each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def test_the_docs_page_references_only_its_own_assets(client: TestClient) -> None:
    client.auth = None
    answer = client.get("/docs")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    page = _Page()
    page.feed(answer.text)
    assert page.script_text == [], "inline script"
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts and all(attrs.get("src", "").startswith("/docs/assets/") for attrs in scripts)
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (tag, value)
            if value:
                asset = client.get(value)
                assert asset.status_code == 200, value
    init = client.get("/docs/assets/init.js").text
    assert "validatorUrl: null" in init
    assert client.get("/docs/assets/LICENSE").status_code == 200
    assert client.get("/docs/assets/../../app.py").status_code == 404
    assert client.get("/openapi.json").status_code == 200


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_swagger_ui_renders_in_chromium_without_any_other_host(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        # Every host but the server is unreachable: a CDN would fail to load.
        if route.request.url.startswith(served):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            # Swagger UI renders the operations that are in view: a page tall enough for all.
            page = browser.new_page(viewport={"width": 1280, "height": 40_000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.route("**/*", only_this_server)
            page.goto(f"{served}/docs")
            # Swagger UI ran (scripts from the package, under the page's CSP) and read the
            # document: its operations are listed.
            page.wait_for_selector(
                '.opblock-summary-path[data-path="/api/subscribers"]', timeout=60_000
            )
            dom = page.content()
            paths = page.eval_on_selector_all(
                ".opblock-summary-path", "nodes => nodes.map(n => n.getAttribute('data-path'))"
            )
        finally:
            browser.close()
    assert "swagger-ui" in dom and "/api/subscribers" in paths
    assert elsewhere == [] and errors == []
