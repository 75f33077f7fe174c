"""The browser-test harness: the real server, Debian's Chromium driven by Playwright, and the
checks every browser test gets for free.

- `ui_server` (one per test session): `stmails serve --no-sender` as a subprocess on a fresh
  SQLite database and a free loopback port, with a known admin credential. `make_server` starts
  more (the first-run test needs one without an admin).
- `browser` (one per session): Chromium from `/usr/bin/chromium` (scripts/setup.sh installs it;
  no browser is downloaded), headless with the flags this machine needs, in a fresh profile
  (Playwright gives every launch a new temporary user-data-dir). Tests skip with a message when
  Chromium or Playwright is absent.
- `page`: a new browser context per test (its own cookies), which fails the test on any console
  error or uncaught page error (a CSP violation is a console error too). Each test's context
  comes from its own client address (X-Forwarded-For, believed from loopback like a trusted
  proxy's), so the per-address login throttle of one test does not reach the next.
- `shot(page, name)` writes docs/screenshots/<name>.png, which docs/ui.md shows.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

# The real aiosmtpd sink of the sending tests, for the password-reset mail.
from sending.conftest import smtp_sink  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = ("admin", "admin-password-123")
START_TIMEOUT = 60.0
_addresses = itertools.count(10)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def next_client_address() -> str:
    """A documentation address (RFC 5737) not used by any other test of this session."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


@dataclass
class Server:
    """A running `stmails serve` and the admin credential it was started with."""

    base_url: str
    admin: tuple[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    users_made: list[str] = field(default_factory=list)

    def api(self) -> httpx.Client:
        """An API client authenticated as the admin (Basic), from its own client address."""
        return httpx.Client(
            base_url=self.base_url,
            auth=self.admin,
            headers={"X-Forwarded-For": next_client_address()},
            timeout=30,
        )

    def make_admin(self, username: str, password: str = "a-good-password-1") -> tuple[str, str]:
        """A new Super Admin user made through the API; returns (username, password)."""
        with self.api() as api:
            roles = api.get("/api/roles/users").json()["data"]
            super_admin = next(r["id"] for r in roles if r["name"] == "Super Admin")
            made = api.post(
                "/api/users",
                json={
                    "username": username,
                    "password": password,
                    "type": "user",
                    "status": "enabled",
                    "user_role_id": super_admin,
                },
            )
            assert made.status_code == 200, made.text
        self.users_made.append(username)
        return username, password


def start_server(
    folder: Path,
    *,
    admin: tuple[str, str] | None = ADMIN,
    env: dict[str, str] | None = None,
    sender: bool = False,
) -> Server:
    """Starts `stmails serve` on a new SQLite database in `folder` and waits for /health;
    with `sender` the campaign sender runs in it too."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "STMAILS_DATABASE_URL": f"sqlite:///{folder / 'stmails.db'}",
        "STMAILS_DATA_DIR": str(folder),
        "STMAILS_HOST": "127.0.0.1",
        "STMAILS_PORT": str(port),
        "STMAILS_ROOT_URL": base_url,
        "STMAILS_ADMIN_USER": admin[0] if admin else "",
        "STMAILS_CONFIG": "",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if admin:
        environment["STMAILS_ADMIN_PASSWORD"] = admin[1]
    else:
        environment.pop("STMAILS_ADMIN_PASSWORD", None)
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stmails", "serve", *([] if sender else ["--no-sender"])],
            cwd=folder,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stmails serve exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return Server(base_url, admin or ("", ""), process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"stmails serve did not start: {log.read_text(errors='replace')}")


def stop_server(server: Server) -> None:
    """Stops the server (SIGTERM, then SIGKILL after 15 s)."""
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)


@pytest.fixture(scope="session")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Starts servers (stopped at the end of the session): `make_server(admin=None)` starts one
    without an admin user, for the first-run page."""
    started: list[Server] = []

    def make(
        *,
        admin: tuple[str, str] | None = ADMIN,
        env: dict[str, str] | None = None,
        sender: bool = False,
    ) -> Server:
        server = start_server(
            tmp_path_factory.mktemp("server"), admin=admin, env=env, sender=sender
        )
        started.append(server)
        return server

    yield make
    for server in started:
        stop_server(server)


@pytest.fixture(scope="session")
def ui_server(make_server: Callable[..., Server]) -> Server:
    """The server the browser tests share (each test makes its own users on it)."""
    return make_server()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, one for the whole session."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (scripts/setup.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is absent (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class BrowserErrors:
    """Console errors and uncaught exceptions seen by a test's pages.

    Chromium logs "Failed to load resource" for any answer of 400 or more, the page itself
    included. A page answered 4xx on purpose (a refused form, a login that failed) is no error
    of the page, so the status of a top-level document is not counted; a failed asset or API
    call still is.
    """

    messages: list[str] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)
    # Console errors a test expects, as substrings.
    expected: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [
            text
            for text, url in self._entries
            if not (text.startswith("Failed to load resource") and url in self.documents)
            and not any(e in text for e in self.expected)
        ]

    _entries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, text: str, url: str = "") -> None:
        self._entries.append((text, url))
        self.messages.append(f"{text} ({url})" if url else text)


@pytest.fixture
def browser_errors() -> BrowserErrors:
    """The errors the current test's pages logged (see `page`)."""
    return BrowserErrors()


def watch(target: Any, errors: BrowserErrors) -> None:
    """Records `target`'s (a page's) console errors and uncaught exceptions in `errors`."""
    target.on(
        "console",
        lambda message: (
            errors.add(message.text, message.location.get("url", ""))
            if message.type == "error"
            else None
        ),
    )
    target.on("pageerror", lambda exc: errors.add(f"uncaught: {exc}"))
    target.on(
        "response",
        lambda response: (
            errors.documents.add(response.url)
            if response.request.resource_type == "document"
            else None
        ),
    )


@pytest.fixture
def new_context(
    browser: Any, ui_server: Server, browser_errors: BrowserErrors
) -> Iterator[Callable[..., Any]]:
    """Makes browser contexts on `ui_server` (closed after the test); every page they open is
    watched for errors, which fail the test."""
    contexts: list[Any] = []

    def make(server: Server | None = None, **options: Any) -> Any:
        headers = {"X-Forwarded-For": next_client_address(), **options.pop("headers", {})}
        context = browser.new_context(
            base_url=(server or ui_server).base_url,
            extra_http_headers=headers,
            locale=options.pop("locale", "en-US"),
            **options,
        )
        context.on("page", lambda opened: watch(opened, browser_errors))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    unexpected = browser_errors.unexpected()
    assert not unexpected, f"the pages logged errors: {unexpected}"


@pytest.fixture
def page(new_context: Callable[..., Any]) -> Any:
    """A page in a fresh context on `ui_server`."""
    return new_context().new_page()


def shot(page: Any, name: str) -> Path:
    """Writes a full-page screenshot to docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
