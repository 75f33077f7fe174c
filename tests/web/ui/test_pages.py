"""The admin UI over HTTP without a browser: CSRF and Origin checks, sessions, the API through
the browser session, the login throttle and hashing cap on API auth, security headers, assets,
escaping, languages. (tests/web/ui/test_browser.py drives the same pages in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from stmails.services import login_guard, roles, users
from stmails.web.admin.pages import NAV, page, render_page
from stmails.web.deps import Viewer
from stmails.web.templating import assets, static_url
from web.conftest import ADMIN
from web.test_permissions import app_routes

ORIGIN = "http://testserver"


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A cookie-keeping client without credentials, like a browser."""
    with TestClient(app, raise_server_exceptions=False, base_url=ORIGIN) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html) or re.search(
        r'name="csrf-token" content="([0-9a-f]{64})"', html
    )
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, username: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    """Signs in through the form; returns the CSRF token of the signed-in pages."""
    token = csrf_of(client.get("/admin/login").text)
    answer = client.post(
        "/admin/login",
        data={"csrf_token": token, "username": username, "password": password},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/admin/").text)


def test_anonymous_pages_redirect_to_login_and_unsafe_ones_need_a_token(
    app: FastAPI, browser: TestClient
) -> None:
    public = {
        "/admin/login",
        "/admin/login/totp",
        "/admin/first-run",
        "/admin/password-reset",
        "/admin/password-reset/confirm",
        "/admin/logout",
    }
    pages = [(m, p) for m, p in app_routes(app) if p.startswith("/admin")]
    assert ("GET", "/admin/") in pages and ("POST", "/admin/profile") in pages
    for method, path in pages:
        answer = browser.request(method, path, follow_redirects=False)
        if method != "GET":
            # Every unsafe page request is refused before its handler without a CSRF token.
            assert answer.status_code == 403, (method, path)
            assert "could not be accepted" in answer.text
        elif path not in public:
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/admin/login?next=")


def test_login_sets_a_fresh_httponly_lax_session_and_logout_revokes_it(
    browser: TestClient,
) -> None:
    browser.get("/admin/login")
    pre = browser.cookies.get("stmails_presession")
    assert pre
    token = sign_in(browser)
    session_cookie = browser.cookies.get("stmails_session")
    assert session_cookie and session_cookie != pre
    assert "stmails_presession" not in browser.cookies
    assert browser.get("/admin/").status_code == 200
    browser.post("/admin/logout", data={"csrf_token": token}, headers={"Origin": ORIGIN})
    # Replaying the old cookie opens nothing.
    browser.cookies.set("stmails_session", session_cookie)
    answer = browser.get("/admin/", follow_redirects=False)
    assert answer.status_code == 303


def test_set_cookie_flags(app: FastAPI) -> None:
    with TestClient(app, base_url="http://testserver") as plain:
        header = plain.get("/admin/login").headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=lax" in header and "Secure" not in header
    # Over HTTPS (directly, or as uvicorn reports a trusted proxy's X-Forwarded-Proto) cookies
    # are Secure and pages carry HSTS.
    with TestClient(app, base_url="https://testserver") as secure:
        answer = secure.get("/admin/login")
        assert "Secure" in answer.headers["set-cookie"]
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert "strict-transport-security" not in plain.get("/admin/login").headers


def test_login_csrf_and_origin_checks(browser: TestClient) -> None:
    token = csrf_of(browser.get("/admin/login").text)
    form = {"username": ADMIN[0], "password": ADMIN[1]}
    cases = [
        ({}, {"Origin": ORIGIN}),
        ({"csrf_token": "0" * 64}, {"Origin": ORIGIN}),
        ({"csrf_token": token}, {"Origin": "https://evil.example"}),
        ({"csrf_token": token}, {"Origin": "null"}),
        ({"csrf_token": token}, {"Referer": "https://evil.example/page"}),
    ]
    for extra, headers in cases:
        answer = browser.post(
            "/admin/login", data={**form, **extra}, headers=headers, follow_redirects=False
        )
        assert answer.status_code == 403, (extra, headers)
    # A token bound to another browser's cookie does not pass either.
    with TestClient(browser.app, base_url=ORIGIN) as other:
        foreign = csrf_of(other.get("/admin/login").text)
    answer = browser.post(
        "/admin/login", data={**form, "csrf_token": foreign}, follow_redirects=False
    )
    assert answer.status_code == 403
    answer = browser.post(
        "/admin/login",
        data={**form, "csrf_token": token},
        headers={"Referer": f"{ORIGIN}/admin/login"},
        follow_redirects=False,
    )
    assert answer.status_code == 303


def test_next_never_leaves_the_site(browser: TestClient) -> None:
    token = csrf_of(browser.get("/admin/login").text)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/ok\r\nX: y"):
        answer = browser.post(
            "/admin/login",
            data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1], "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/admin/", target
        browser.cookies.clear()
        token = csrf_of(browser.get("/admin/login").text)


def test_the_json_api_takes_the_session_only_with_the_csrf_header(
    browser: TestClient,
) -> None:
    token = sign_in(browser)
    assert browser.get("/api/lists").status_code == 200
    refused = browser.post("/api/lists", json={"name": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    foreign = browser.post(
        "/api/lists",
        json={"name": "x"},
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    # A form field is not enough for the API (it takes JSON, and the header proves a script
    # of ours sent it).
    assert browser.post("/api/lists", data={"name": "x", "csrf_token": token}).status_code == 403
    made = browser.post("/api/lists", json={"name": "x"}, headers={"X-CSRF-Token": token})
    assert made.status_code == 200, made.text
    # Basic/token auth is unchanged: no CSRF header needed, whatever cookies ride along.
    with_basic = browser.post("/api/lists", json={"name": "y"}, auth=ADMIN)
    assert with_basic.status_code == 200, with_basic.text


def test_pages_use_the_api_permissions(app: FastAPI, session_maker: sessionmaker[Session]) -> None:
    with session_maker() as session:
        role = roles.create(session, "Bounce reader", ["bounces:get"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, base_url=ORIGIN) as client:
        sign_in(client, "reader", "reader-password-1")
        home = client.get("/admin/").text
        assert "Recent bounces" in home and "Subscribers per list" not in home
        shown = {item.key for item in NAV if f">{item.label}<" in home}
        assert shown == {"dashboard", "bounces"}
        # The API refuses what the role lacks, through the session as through Basic auth.
        assert client.get("/api/lists").status_code == 403


def test_api_basic_auth_is_throttled_per_user_and_address(client: TestClient, app: FastAPI) -> None:
    """Regression (issue 11): before, failed Basic logins were never limited."""
    client.auth = None
    for _ in range(login_guard.USER_POLICY.free):
        answer = client.get("/api/lists", auth=(ADMIN[0], "wrong-password"))
        # listmonk's answer to wrong credentials.
        assert answer.status_code == 403
    locked = client.get("/api/lists", auth=ADMIN)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "too many failed sign-ins" in locked.json()["message"]
    # Other users are not affected by this user's lock (the address is under its limit).
    assert client.get("/api/lists", auth=("robot", "robot-token-0123456789")).status_code == 200


def test_api_auth_beyond_the_hashing_cap_is_503(client: TestClient, app: FastAPI) -> None:
    gate = app.state.stmails.hashing
    gate.wait = 0.05
    taken = [gate._slots.acquire() for _ in range(gate.limit)]
    try:
        client.auth = None
        answer = client.get("/api/lists", auth=(ADMIN[0], "some-password"))
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
    finally:
        for _ in taken:
            gate._slots.release()
    assert client.get("/api/lists", auth=ADMIN).status_code == 200


def test_security_headers_on_html_and_not_on_the_hot_routes(
    browser: TestClient, client: TestClient
) -> None:
    page = browser.get("/admin/login")
    csp = page.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    # /docs has a policy of its own (web/docs.py): Swagger UI sets inline styles, so its
    # style-src allows them; its scripts are held to the same rule as every page.
    docs = browser.get("/docs").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in docs.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in directives["default-src"]
    api = client.get("/api/lists")
    assert "content-security-policy" not in api.headers
    assert api.headers["x-content-type-options"] == "nosniff"
    # The hot routes keep their short stack: none of the page middleware runs there.
    health = client.get("/health")
    assert "x-content-type-options" not in health.headers
    bounce = client.post(
        "/webhooks/bounce", json={"email": "a@example.com", "source": "api", "type": "hard"}
    )
    assert bounce.status_code == 200 and "x-content-type-options" not in bounce.headers


def test_no_inline_script_or_style_and_no_external_asset(browser: TestClient) -> None:
    sign_in(browser)
    for path in ("/admin/login", "/admin/", "/admin/profile", "/admin/profile/2fa"):
        html = browser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), path
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#")) and not url.startswith("//"), (path, url)


def test_static_assets_are_versioned_and_cached_for_a_year(browser: TestClient) -> None:
    for name in (
        "css/app.css",
        "js/app.js",
        "vendor/htmx/htmx.min.js",
        "vendor/chartjs/chart.umd.min.js",
    ):
        url = static_url(name)
        answer = browser.get(url)
        assert answer.status_code == 200, name
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.content == assets()[name].body
        stale = url.replace(assets()[name].digest, "0" * 12)
        assert browser.get(stale).status_code == 404
    assert browser.get("/static/0/../../config.py").status_code == 404
    # The vendored libraries ship with their licenses.
    assert "vendor/htmx/LICENSE" in assets() and "vendor/chartjs/LICENSE.md" in assets()


def test_values_are_escaped_in_pages(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    payload = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    with session_maker() as session:
        user = users.get_by_username(session, ADMIN[0])
        assert user is not None
        user.name = payload
        session.commit()
    sign_in(browser)
    html = browser.get("/admin/profile").text
    assert payload not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;" in html


def test_language_follows_the_profile_then_the_browser(
    browser: TestClient, session_maker: sessionmaker[Session]
) -> None:
    zh = browser.get("/admin/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in zh.text and "登录" in zh.text
    en = browser.get("/admin/login", headers={"Accept-Language": "fr, en;q=0.5"})
    assert '<html lang="en">' in en.text
    token = sign_in(browser)
    browser.post(
        "/admin/profile",
        data={"csrf_token": token, "name": "", "email": "", "locale": "zh_CN"},
    )
    home = browser.get("/admin/", headers={"Accept-Language": "en"})
    assert "仪表盘" in home.text


def test_password_reset_says_when_smtp_is_not_configured(browser: TestClient) -> None:
    page = browser.get("/admin/password-reset")
    assert "no SMTP server is configured" in page.text
    answer = browser.post(
        "/admin/password-reset",
        data={"csrf_token": csrf_of(page.text), "identifier": ADMIN[0]},
    )
    assert answer.status_code == 503 and "no SMTP server is configured" in answer.text


def test_first_run_is_closed_once_an_admin_exists(browser: TestClient) -> None:
    assert browser.get("/admin/first-run", follow_redirects=False).headers["location"] == (
        "/admin/login"
    )
    token = csrf_of(browser.get("/admin/login").text)
    answer = browser.post(
        "/admin/first-run",
        data={
            "csrf_token": token,
            "username": "intruder",
            "password": "intruder-pass-1",
            "password_again": "intruder-pass-1",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"


def test_password_change_ends_the_other_sessions(app: FastAPI, browser: TestClient) -> None:
    with TestClient(app, base_url=ORIGIN) as elsewhere:
        sign_in(elsewhere)
        token = sign_in(browser)
        answer = browser.post(
            "/admin/profile/password",
            data={
                "csrf_token": token,
                "current_password": ADMIN[1],
                "new_password": "changed-password-1",
                "new_password_again": "changed-password-1",
            },
        )
        assert "other sessions have ended" in answer.text
        assert browser.get("/admin/", follow_redirects=False).status_code == 200
        assert elsewhere.get("/admin/", follow_redirects=False).status_code == 303


def test_a_page_refuses_users_without_its_permission(
    app: FastAPI, session_maker: sessionmaker[Session]
) -> None:
    router = APIRouter()

    @router.get("/admin/lists-only")
    async def lists_only(
        request: Request, viewer: Annotated[Viewer, page("lists:get_all")]
    ) -> Response:
        return render_page(request, "error.html", viewer=viewer, title="Lists", message="ok")

    app.include_router(router)
    with session_maker() as session:
        role = roles.create(session, "Bounce reader", ["bounces:get"])
        users.create_admin(session, "reader", "reader-password-1", role=role)
        session.commit()
    with TestClient(app, base_url=ORIGIN) as reader, TestClient(app, base_url=ORIGIN) as admin:
        sign_in(reader, "reader", "reader-password-1")
        refused = reader.get("/admin/lists-only")
        assert refused.status_code == 403
        assert "You do not have permission to open this page." in refused.text
        sign_in(admin)
        assert admin.get("/admin/lists-only").status_code == 200
    with pytest.raises(ValueError, match="unknown permissions"):
        page("lists:get_everything")
