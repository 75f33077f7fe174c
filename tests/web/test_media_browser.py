"""What a real browser (Debian's Chromium, driven by Playwright) does with uploaded files served
by a real server: images show in a page, an SVG carrying a script shows as an image (where no
script runs) and, opened directly, is downloaded rather than rendered, so its script never runs
on stmails' origin. Skips with a message when Chromium or Playwright is absent."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import mediafiles

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (running.started and running.servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "the server did not start"
    port = running.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=20)


def test_uploaded_files_in_chromium(server: str, api_credentials: tuple[str, str]) -> None:
    with httpx.Client(base_url=server, auth=api_credentials) as api:
        urls = {}
        for name, content in (
            ("photo.png", mediafiles.image("PNG", 120, 80)),
            ("logo.svg", mediafiles.SVG_WITH_SCRIPT),
        ):
            answer = api.post("/api/media", files={"file": (name, content, "image/png")})
            assert answer.status_code == 200, answer.text
            urls[name] = answer.json()["data"]["url"].replace("http://127.0.0.1:9000", server)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(accept_downloads=True)
            # A page of stmails' origin (a 404 answer is enough) that shows both as images.
            page.goto(f"{server}/uploads/none")
            page.set_content(
                f'<title>mail</title><img id="photo" src="{urls["photo.png"]}">'
                f'<img id="logo" src="{urls["logo.svg"]}">'
            )
            page.wait_for_load_state("load")
            sizes = page.evaluate(
                "[...document.images].map(i => [i.id, i.naturalWidth, i.naturalHeight])"
            )
            assert sizes == [["photo", 120, 80], ["logo", 40, 40]]
            assert page.title() == "mail"
            # Opened directly, the SVG is a download: nothing of it is rendered or run.
            with page.expect_download() as download:
                try:
                    page.goto(urls["logo.svg"])
                except sync_api.Error as exc:
                    assert "net::ERR_ABORTED" in str(exc) or "Download is starting" in str(exc)
            assert download.value.suggested_filename == "logo.svg"
            assert page.title() == "mail"
        finally:
            browser.close()
