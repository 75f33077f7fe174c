"""What every admin page shares: who is signed in, what they may see, and how a page renders.

A page route is an ordinary FastAPI route on `router` (web/admin/__init__.py) that declares

    viewer: Annotated[Viewer, page("subscribers:get_all")]

to require a signed-in user holding those permissions (the same names and check as the API,
web.permissions): without a session the browser is sent to the login page and back; without the
permission it gets a 403 page, and the section is not in its navigation either. Unsafe methods
are checked for CSRF and Origin by the router itself (`csrf_protect`), before any handler runs.
`render_page()` renders a template with the shared context (viewer, navigation, CSRF token,
flash messages, language).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from stmails.services import sessions as session_service
from stmails.services.roles import ALL_PERMISSIONS
from stmails.web import i18n
from stmails.web.browser import (
    FLASH_COOKIE,
    PRESESSION_COOKIE,
    CsrfRefused,
    add_flash,
    check_unsafe_request,
    clear_cookie,
    csrf_binding,
    read_flashes,
    set_cookie,
)
from stmails.web.deps import Viewer, app_state, browser_viewer
from stmails.web.i18n import N_
from stmails.web.templating import render

ADMIN_HOME = "/admin/"
LOGIN_PATH = "/admin/login"
APP_NAME = "stmails"


@dataclass(frozen=True, slots=True)
class NavItem:
    """A section of the navigation: its label (a message id), the URL of its page (None while
    the page does not exist yet: shown, not linked) and the permission it needs (None: any
    signed-in user)."""

    key: str
    label: str
    href: str | None
    permission: str | None


# The sections of the admin UI, in the order shown. A developer adding a section's page sets
# its href here.
NAV: tuple[NavItem, ...] = (
    NavItem("dashboard", N_("Dashboard"), ADMIN_HOME, None),
    NavItem("subscribers", N_("Subscribers"), "/admin/subscribers", "subscribers:get_all"),
    NavItem("lists", N_("Lists"), "/admin/lists", "lists:get_all"),
    NavItem("campaigns", N_("Campaigns"), "/admin/campaigns", "campaigns:get_all"),
    NavItem("templates", N_("Templates"), "/admin/templates", "templates:get"),
    NavItem("bounces", N_("Bounces"), "/admin/bounces", "bounces:get"),
    NavItem("suppression", N_("Suppression"), "/admin/suppression", "suppressions:get"),
    NavItem("verification", N_("Verification"), "/admin/verification", "verify:run"),
    NavItem("settings", N_("Settings"), "/admin/settings", "settings:get"),
    NavItem("users", N_("Users"), "/admin/users", "users:get"),
    NavItem("logs", N_("Logs"), "/admin/logs", "settings:maintain"),
)


class LoginRequired(Exception):
    """The page needs a signed-in user; the browser goes to the login page, then `next`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """The signed-in user lacks `permission` for this page or action."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


def request_locale(request: Request, viewer: Viewer | None = None) -> str:
    """The language of this request's pages: the user's choice, else the browser's."""
    return i18n.negotiate(request.headers.get("accept-language"), viewer.locale if viewer else None)


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site (never another host), else the admin home."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 33 for ch in target)
        or len(target) > 2000
    ):
        return ADMIN_HOME
    return target


async def signed_in(request: Request) -> Viewer:
    """The signed-in user of this page request; LoginRequired otherwise."""
    viewer = await browser_viewer(request)
    if viewer is None or viewer.mfa_pending:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    i18n.set_locale(request_locale(request, viewer))
    return viewer


def page(*permissions: str) -> Any:
    """The dependency of a page (`Annotated[Viewer, page(...)]`): a signed-in user holding
    every one of `permissions` (none: any signed-in user)."""
    # A misspelt permission would lock everybody out of the page: fail when the route is made.
    unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
    if unknown:
        raise ValueError(f"unknown permissions: {unknown}")
    needed = permissions

    async def permitted(viewer: Annotated[Viewer, Depends(signed_in)]) -> Viewer:
        for permission in needed:
            if permission not in viewer.principal.permissions:
                raise PageForbidden(permission)
        return viewer

    return Depends(permitted)


def can(viewer: Viewer | None, permission: str | None) -> bool:
    """True when `viewer` holds `permission` (None: any signed-in user)."""
    if viewer is None:
        return False
    return permission is None or permission in viewer.principal.permissions


async def csrf_protect(request: Request) -> None:
    """The router-wide check of every unsafe request: our Origin and a valid CSRF token."""
    state = app_state(request)
    await check_unsafe_request(request, state.keys, state.settings.root_url)


def navigation(viewer: Viewer | None, current: str) -> list[dict[str, Any]]:
    """The sections `viewer` may see, with their translated labels."""
    return [
        {
            "key": item.key,
            "label": i18n.gettext(item.label),
            "href": item.href,
            "current": item.key == current,
        }
        for item in NAV
        if can(viewer, item.permission)
    ]


def render_page(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    section: str = "",
    title: str = "",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """An admin page: `template` with the shared context (and `headers`). Forms on it carry a
    CSRF token bound to the browser's session (or a new pre-session cookie set here)."""
    state = app_state(request)
    locale = request_locale(request, viewer)
    binding = csrf_binding(request)
    new_binding = None
    if binding is None:
        new_binding = binding = session_service.new_token()
    flashes = read_flashes(request, state.keys)
    shared: Mapping[str, Any] = {
        "app_name": APP_NAME,
        "viewer": viewer,
        "nav": navigation(viewer, section) if viewer and not viewer.mfa_pending else [],
        "csrf_token": session_service.csrf_token(state.keys.secret, binding),
        "flashes": flashes,
        "locale": locale,
        "html_lang": locale.replace("_", "-"),
        "title": title,
        "can": lambda permission: can(viewer, permission),
    }
    response = render(
        template, {**shared, **context}, locale=locale, status_code=status_code, headers=headers
    )
    if new_binding is not None:
        set_cookie(request, response, PRESESSION_COOKIE, new_binding, None)
    if flashes:
        clear_cookie(request, response, FLASH_COOKIE)
    return response


def redirect(
    request: Request, to: str, *, flash: tuple[str, str] | None = None
) -> RedirectResponse:
    """303 to `to` (after a form post), optionally with a flash message (level, text)."""
    response = RedirectResponse(to, status_code=303)
    if flash is not None:
        add_flash(request, response, app_state(request).keys, *flash)
    return response


def _error_page(request: Request, status: int, message: str) -> Response:
    viewer = getattr(request.state, "stmails_viewer", None)
    with i18n.use_locale(request_locale(request, viewer)):
        text = i18n.gettext(message)
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        title=str(status),
        status_code=status,
        message=text,
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = f"{LOGIN_PATH}?next={quote(safe_next(exc.next_path), safe='/')}"
    if request.headers.get("hx-request"):
        # htmx follows this header with a full page load instead of swapping in a login form.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    return _error_page(request, 403, N_("You do not have permission to open this page."))


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRefused)
    return _error_page(
        request,
        403,
        N_(
            "This form could not be accepted: it was sent from another site or has expired. "
            "Go back, reload the page and try again."
        ),
    )


def install_page_errors(app: FastAPI) -> None:
    """Registers the answers of page errors: login redirect, 403 pages."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
