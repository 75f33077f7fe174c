"""The admin UI in a real browser (Debian's Chromium through Playwright) against the real server.

Every test fails on any console error or uncaught exception of its pages (conftest.page), so
each also checks that the page runs clean under the Content-Security-Policy.
"""

from __future__ import annotations

import email
import http.server
import re
import threading
import time
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import httpx
import pyotp
import pytest

from sending.conftest import Sink
from stmails.web.admin.pages import NAV
from web.ui.conftest import BrowserErrors, Server, free_port, shot

pytestmark = pytest.mark.integration

_names = iter(range(1, 10_000))


def new_user(server: Server, prefix: str) -> tuple[str, str]:
    return server.make_admin(f"{prefix}{next(_names)}")


def log_in(page: Any, username: str, password: str) -> None:
    """Signs in through the login form (from wherever the page is)."""
    page.goto("/admin/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def enrol_two_factor(page: Any) -> tuple[pyotp.TOTP, list[str]]:
    """Turns two-factor sign-in on from the profile (signed in); returns the authenticator
    and the recovery codes shown."""
    page.goto("/admin/profile/2fa")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    page.wait_for_url("**/admin/profile/2fa/setup")
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    assert str(qr.get_attribute("src")).startswith("data:image/svg+xml;base64,")
    # The QR code is an image that really rendered (no blocked inline content).
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0
    shot(page, "two-factor-setup")
    totp = pyotp.TOTP(page.inner_text("code.secret").strip())
    page.get_by_label("Code").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_selector("ul.codes")
    return totp, page.locator("ul.codes code").all_inner_texts()


def save_profile(page: Any, label: str, value: str) -> None:
    """Sets one field of the signed-in user's profile through the profile form."""
    page.goto("/admin/profile")
    page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_selector(".flashes")


def csrf_of(page: Any) -> str:
    return str(page.locator('meta[name="csrf-token"]').get_attribute("content"))


def test_login_without_2fa_then_logout(page: Any, ui_server: Server) -> None:
    username, password = new_user(ui_server, "plain")
    page.goto("/")
    # Not signed in: the root leads to the login page, which remembers where to go back to.
    assert page.url.endswith("/admin/login?next=/admin/")
    shot(page, "login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    nav = page.get_by_role("navigation", name="Main")
    for section in (
        "Dashboard",
        "Subscribers",
        "Lists",
        "Campaigns",
        "Templates",
        "Bounces",
        "Suppression",
        "Verification",
        "Settings",
        "Users",
        "Logs",
    ):
        assert nav.get_by_text(section, exact=True).count() == 1, section
    # Only pages that exist are links.
    assert nav.get_by_role("link").all_inner_texts() == [i.label for i in NAV if i.href]
    cookie = next(c for c in page.context.cookies() if c["name"] == "stmails_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    # The chart component draws from the JSON API through the browser session.
    page.wait_for_selector("canvas[data-chart-ready=true]")
    shot(page, "dashboard")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/admin/login")
    assert "You have signed out." in page.inner_text("main")
    # The old session cookie is gone and revoked: the dashboard asks for a login again.
    page.goto("/admin/")
    assert "/admin/login" in page.url


def test_wrong_password_is_refused(page: Any, ui_server: Server) -> None:
    username, _ = new_user(ui_server, "wrong")
    log_in(page, username, "not-the-password")
    page.wait_for_selector(".form-error")
    assert "The user name or password is wrong." in page.inner_text(".form-error")
    assert "/admin/login" in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "stmails_session"]


def test_login_is_throttled_after_repeated_failures(
    page: Any, ui_server: Server, browser_errors: BrowserErrors
) -> None:
    username, password = new_user(ui_server, "throttled")
    for _ in range(5):
        log_in(page, username, "guessing-wrong")
        page.wait_for_selector(".form-error")
    log_in(page, username, password)
    page.wait_for_selector(".form-error")
    # Even the right password is refused while the user name is locked.
    assert "Too many failed sign-in attempts" in page.inner_text(".form-error")
    assert "/admin/login" in page.url
    shot(page, "login-throttled")
    # The API's Basic auth counts the same failures: the user is locked there too.
    answer = httpx.get(f"{ui_server.base_url}/api/lists", auth=(username, password))
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0


def test_two_factor_enrolment_login_and_recovery_code(page: Any, ui_server: Server) -> None:
    username, password = new_user(ui_server, "twofa")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    totp, codes = enrol_two_factor(page)
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    shot(page, "recovery-codes")
    page.get_by_role("button", name="Sign out").click()

    # Password, then the TOTP step. The code of the enrolment's time step was spent; the next
    # step's code is accepted (one step of clock drift is allowed).
    log_in(page, username, password)
    page.wait_for_url("**/admin/login/totp**")
    assert not page.get_by_role("navigation", name="Main").count()
    page.get_by_label("Code").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector(".form-error")
    page.get_by_label("Code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/admin/")
    page.get_by_role("button", name="Sign out").click()

    # A recovery code signs in once.
    for attempt in range(2):
        log_in(page, username, password)
        page.wait_for_url("**/admin/login/totp**")
        page.get_by_label("Code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        if attempt == 0:
            page.wait_for_url("**/admin/")
            assert "recovery code" in page.inner_text(".flashes")
            page.get_by_role("button", name="Sign out").click()
        else:
            page.wait_for_selector(".form-error")
            assert "/admin/login/totp" in page.url


def test_disable_two_factor_needs_the_password(page: Any, ui_server: Server) -> None:
    username, password = new_user(ui_server, "disable")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    enrol_two_factor(page)
    page.get_by_role("link", name="Done").click()
    page.get_by_text("Turn off two-factor sign-in").click()
    form = page.locator("form[action='/admin/profile/2fa/disable']")
    form.get_by_label("Password").fill("not-my-password")
    form.get_by_role("button", name="Turn off").click()
    page.wait_for_selector(".form-error")
    assert "not your current password" in page.inner_text(".form-error")
    page.get_by_text("Turn off two-factor sign-in").click()
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Turn off").click()
    page.wait_for_selector(".flashes")
    assert "Two-factor sign-in is now off." in page.inner_text(".flashes")


def test_csrf_token_is_required_for_forms_and_the_json_api(
    page: Any, ui_server: Server, browser_errors: BrowserErrors
) -> None:
    # The refused fetch calls below are logged by the browser, as they should be.
    browser_errors.expected.append("status of 403")
    username, password = new_user(ui_server, "csrf")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    token = csrf_of(page)
    post = """async ([url, body, headers]) => {
        const r = await fetch(url, {method: "POST", body, headers, credentials: "same-origin"});
        return [r.status, await r.text()];
    }"""
    form = "application/x-www-form-urlencoded"
    # A page form without its token.
    status, text = page.evaluate(post, ["/admin/profile", "name=Mallory", {"Content-Type": form}])
    assert status == 403 and "could not be accepted" in text
    status, _ = page.evaluate(
        post, ["/admin/profile", f"name=Alice&csrf_token={token}", {"Content-Type": form}]
    )
    assert status == 200
    # The JSON API with the session cookie: refused without the header, accepted with it.
    body = '{"name": "csrf list"}'
    status, text = page.evaluate(post, ["/api/lists", body, {"Content-Type": "application/json"}])
    assert status == 403 and "CSRF" in text
    status, text = page.evaluate(
        post, ["/api/lists", body, {"Content-Type": "application/json", "X-CSRF-Token": token}]
    )
    assert status == 200, text


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """Serves one page on another origin with a form posting to the stmails server."""

    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[Callable[[bytes], str]]:
    """An HTTP server on another origin (another port); `serve(html)` returns its URL."""
    server = http.server.HTTPServer(("127.0.0.1", free_port()), _AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(html: bytes) -> str:
        _AttackerPage.html = html
        return f"http://127.0.0.1:{server.server_port}/"

    yield serve
    server.shutdown()
    server.server_close()


def test_cross_origin_post_is_refused_even_with_a_valid_token(
    page: Any, ui_server: Server, attacker_site: Callable[[bytes], str]
) -> None:
    username, password = new_user(ui_server, "victim")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    # Suppose the token leaked: the Origin check still refuses the other origin's post (the
    # two origins differ only by port, so they are the same site and the cookie is sent).
    token = csrf_of(page)
    url = attacker_site(
        f"""<!doctype html><form method="post" action="{ui_server.base_url}/admin/profile">
        <input type="hidden" name="csrf_token" value="{token}">
        <input type="hidden" name="name" value="Pwned">
        <button type="submit">Win a prize</button></form>""".encode()
    )
    page.goto(url)
    page.get_by_role("button", name="Win a prize").click()
    page.wait_for_load_state()
    assert "could not be accepted" in page.inner_text("body")
    page.goto("/admin/profile")
    assert page.get_by_label("Your name").input_value() != "Pwned"


def test_first_run_creates_the_first_admin_once(
    new_context: Callable[..., Any], make_server: Callable[..., Server]
) -> None:
    server = make_server(admin=None)
    page = new_context(server).new_page()
    page.goto("/")
    page.wait_for_url("**/admin/first-run")
    # Password reset cannot work yet: the page says so instead of pretending.
    shot(page, "first-run")
    page.get_by_label("User name").fill("founder")
    page.get_by_label("Your name").fill("Founder")
    page.get_by_label("Email address").fill("founder@example.com")
    page.get_by_label("Password", exact=True).fill("founder-password-1")
    page.get_by_label("Password again").fill("founder-password-1")
    page.get_by_role("button", name="Create admin").click()
    page.wait_for_url("**/admin/")
    assert "Welcome, Founder." in page.inner_text("main")
    page.get_by_role("button", name="Sign out").click()
    # Disabled once an admin exists.
    page.goto("/admin/first-run")
    assert page.url.endswith("/admin/login")
    page.goto("/admin/password-reset")
    assert "no SMTP server is configured" in page.inner_text("main")


def test_password_reset_by_mail_through_a_real_smtp_server(
    page: Any, ui_server: Server, smtp_sink: Sink
) -> None:
    with ui_server.api() as api:
        saved = api.put("/api/settings", json={"smtp": smtp_sink.smtp_settings()})
        assert saved.status_code == 200, saved.text
    username, password = new_user(ui_server, "forgetful")
    address = f"{username}@example.com"
    # The user gives its address on the profile page.
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    save_profile(page, "Email address", address)
    page.get_by_role("button", name="Sign out").click()

    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("User name or email address").fill(username)
    page.get_by_role("button", name="Send reset link").click()
    page.wait_for_selector(".notice")
    assert "a link to reset its password has been sent" in page.inner_text(".notice")
    deadline = time.monotonic() + 10
    while not smtp_sink.handler.by_recipient(address) and time.monotonic() < deadline:
        time.sleep(0.1)
    mail = email.message_from_bytes(
        smtp_sink.handler.by_recipient(address)[0].data, policy=policy.default
    )
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"http://\S+/admin/password-reset/confirm\?token=\S+", body)
    assert link, body
    page.goto(link.group(0))
    shot(page, "password-reset")
    page.get_by_label("New password", exact=True).fill("a-brand-new-password")
    page.get_by_label("New password again").fill("a-brand-new-password")
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url("**/admin/login")
    assert "Your password has been changed" in page.inner_text(".flashes")
    # The link is spent; the old password is gone; the new one works.
    page.goto(link.group(0))
    assert "invalid, has been used or has expired" in page.inner_text("main")
    log_in(page, username, password)
    page.wait_for_selector(".form-error")
    log_in(page, username, "a-brand-new-password")
    page.wait_for_url("**/admin/")


def test_profile_language_switch_turns_the_ui_chinese(
    page: Any, ui_server: Server, new_context: Callable[..., Any]
) -> None:
    username, password = new_user(ui_server, "zh")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    page.goto("/admin/profile")
    page.get_by_label("Language").select_option("zh_CN")
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_selector(".flashes")
    assert page.get_by_role("heading", level=1).inner_text() == "您的个人资料"
    assert "您的个人资料已保存。" in page.inner_text(".flashes")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.goto("/admin/")
    assert page.get_by_role("heading", level=1).inner_text() == "仪表盘"
    assert page.get_by_role("navigation", name="主导航").get_by_text("订阅者").count() == 1
    shot(page, "dashboard-zh")
    # Before sign-in, the browser's language decides.
    chinese = new_context(locale="zh-CN").new_page()
    chinese.goto("/admin/login")
    assert chinese.get_by_role("heading", level=1).inner_text() == "登录"


def test_phone_viewport(new_context: Callable[..., Any], ui_server: Server) -> None:
    username, password = new_user(ui_server, "phone")
    page = new_context(viewport={"width": 375, "height": 740}, is_mobile=True).new_page()
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    # Nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    nav = page.get_by_role("navigation", name="Main")
    assert not nav.is_visible()
    page.get_by_text("Menu", exact=True).click()
    assert nav.is_visible()
    shot(page, "dashboard-phone")
    page.goto("/admin/profile")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "profile-phone")


def test_values_from_mail_webhooks_and_users_render_inert(page: Any, ui_server: Server) -> None:
    payload = (
        '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
    )
    with ui_server.api() as api:
        made = api.post(
            "/api/subscribers",
            json={"email": "xss@example.com", "name": payload, "status": "enabled"},
        )
        assert made.status_code == 200, made.text
        bounce = api.post(
            "/webhooks/bounce",
            json={
                "email": "xss@example.com",
                "source": "api",
                "type": "hard",
                "diagnostic": payload,
            },
        )
        assert bounce.status_code == 200, bounce.text
    username, password = new_user(ui_server, "xss")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    save_profile(page, "Your name", payload)
    page.goto("/admin/")
    table = page.get_by_role("table", name="Recent bounces")
    assert payload in table.inner_text()
    assert table.locator("img, script").count() == 0
    assert payload in page.locator(".account-name").inner_text()
    assert page.locator("header img, header script").count() == 0
    assert page.title() != "pwned" and not dialogs
    shot(page, "dashboard-escaped")


def test_every_page_loads_without_errors(page: Any, ui_server: Server) -> None:
    """A tour of every page (signed out and in); the fixture fails on any console error."""
    for path in ("/admin/login", "/admin/password-reset"):
        page.goto(path)
        assert page.locator("main h1").count() == 1, path
    username, password = new_user(ui_server, "tour")
    log_in(page, username, password)
    page.wait_for_url("**/admin/")
    for path in ("/admin/", "/admin/profile", "/admin/profile/2fa"):
        page.goto(path)
        assert page.locator("main h1").count() == 1, path
        # Landmarks and the skip link are on every page.
        assert page.get_by_role("main").count() == 1
        assert page.get_by_role("link", name="Skip to content").count() == 1
    shot(page, "profile")
    # The keyboard reaches the skip link first, and it moves the focus to the content.
    page.goto("/admin/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
