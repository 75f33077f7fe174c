"""Signing in and out: login (with the TOTP step), logout, first run and password reset.

Every form here is CSRF-protected like any other (the token is bound to a pre-session cookie
before sign-in) and every password check goes through the same guarded authenticator as the
API's Basic auth: failed attempts are counted per address and user name, and hashing is capped.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import Setting, User
from stmails.services import accounts, login_guard, password_resets, two_factor, users
from stmails.services import sessions as session_service
from stmails.services.errors import Conflict, InvalidInput
from stmails.services.login_guard import Busy, Throttled
from stmails.services.sending.compose import compile_content
from stmails.services.sending.direct import raw_targets
from stmails.web import i18n
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import (
    ADMIN_HOME,
    LOGIN_PATH,
    redirect,
    render_page,
    request_locale,
    safe_next,
)
from stmails.web.api.sending_common import direct_sender, sending_config
from stmails.web.body import run_db
from stmails.web.browser import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    client_address,
    set_cookie,
)
from stmails.web.deps import AppState, Viewer, app_state, browser_viewer, forget_viewer
from stmails.web.i18n import _

log = logging.getLogger("stmails.web.admin")
router = APIRouter()

FIRST_RUN_PATH = "/admin/first-run"
TOTP_PATH = "/admin/login/totp"
RESET_PATH = "/admin/password-reset"


def field_error(exc: InvalidInput) -> str:
    """The translated sentence for a field the account services refused."""
    messages = {
        "username": _("Use 1 to 200 characters without spaces or colons."),
        "email": _("Enter a valid email address."),
        "password": _("Use at least %(num)d characters.") % {"num": users.MIN_PASSWORD_LENGTH},
        "name": _("Use at most 200 characters on one line."),
        "locale": _("Choose one of the offered languages."),
        "current_password": _("This is not your current password."),
    }
    return messages.get(exc.field, exc.message)


def new_password(
    form: FormData, name: str = "password", again: str = "password_again"
) -> tuple[str, dict[str, str]]:
    """The new password a form sets, and the errors of its two fields (long enough, typed the
    same twice)."""
    password = text(form, name, 1000)
    errors: dict[str, str] = {}
    if len(password) < users.MIN_PASSWORD_LENGTH:
        errors[name] = _("Use at least %(num)d characters.") % {"num": users.MIN_PASSWORD_LENGTH}
    elif password != text(form, again, 1000):
        errors[again] = _("The two passwords differ.")
    return password, errors


def throttled_message(exc: Throttled) -> str:
    """The sentence a throttled sign-in is told."""
    return i18n.ngettext(
        "Too many failed sign-in attempts. Try again in %(num)d second.",
        "Too many failed sign-in attempts. Try again in %(num)d seconds.",
        exc.retry_after,
    ) % {"num": exc.retry_after}


def busy_message() -> str:
    """The sentence a sign-in refused for load is told."""
    return _("The server is checking too many sign-ins at once. Try again in a moment.")


async def _begin(
    request: Request, response: Response, user_id: int, *, mfa_pending: bool = False
) -> None:
    """Starts a new session for `user_id` (never reusing the browser's old token), ends the
    old one, sets the cookie on `response` and drops the pre-session cookie."""
    state = app_state(request)
    old = request.cookies.get(SESSION_COOKIE)
    address = client_address(request)
    agent = request.headers.get("user-agent", "")

    def work(session: Session) -> str:
        session_service.revoke(session, old)
        # Ended sessions are deleted as new ones start, so the table stays small.
        session_service.purge_expired(session)
        user = session.get(User, user_id)
        assert user is not None
        return session_service.start(
            session, user, state.lifetimes, mfa_pending=mfa_pending, ip=address, user_agent=agent
        )

    token = await run_db(request, work, write=True)
    max_age = (
        int(session_service.MFA_PENDING_LIFETIME.total_seconds())
        if mfa_pending
        else int(state.lifetimes.absolute.total_seconds())
    )
    set_cookie(request, response, SESSION_COOKIE, token, max_age)
    clear_cookie(request, response, PRESESSION_COOKIE)
    forget_viewer(request)


def _admin_exists(state: AppState) -> bool:
    with state.readonly_sessions() as session:
        return accounts.admin_exists(session)


@router.get("/admin/login", include_in_schema=False)
async def login_form(request: Request, next: str = "") -> Response:
    viewer = await browser_viewer(request)
    if viewer is not None and not viewer.mfa_pending:
        return redirect(request, safe_next(next))
    if not await run_in_threadpool(_admin_exists, app_state(request)):
        return redirect(request, FIRST_RUN_PATH)
    i18n.set_locale(request_locale(request))
    return render_page(
        request, "admin/login.html", title=_("Sign in"), next=safe_next(next), username=""
    )


@router.post("/admin/login", include_in_schema=False)
async def login(request: Request) -> Response:
    state = app_state(request)
    i18n.set_locale(request_locale(request))
    form = await form_fields(request)
    username = text(form, "username", 200).strip()
    password = text(form, "password", 1000)
    target = safe_next(text(form, "next", 2000))

    def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return render_page(
            request, "admin/login.html", title=_("Sign in"), next=target, username=username,
            error=message, status_code=status, headers=headers,
        )  # fmt: skip

    if not username or not password:
        return again(_("Enter your user name and password."), 400)
    address = client_address(request)
    try:
        principal = await run_in_threadpool(state.authenticate, username, password, address)
    except Throttled as exc:
        return again(throttled_message(exc), 429, {"Retry-After": str(exc.retry_after)})
    except Busy as exc:
        return again(busy_message(), 503, {"Retry-After": str(exc.retry_after)})
    if principal is not None and principal.type != "admin":
        # An API user's token is no browser password: count it as the failure it is here.
        await run_db(
            request, lambda s: login_guard.record_failure(s, address, username), write=True
        )
        principal = None
    if principal is None:
        return again(_("The user name or password is wrong."), 401)

    def wants_totp(session: Session) -> bool:
        user = session.get(User, principal.user_id)
        return user is not None and two_factor.is_enabled(user)

    pending = await run_db(request, wants_totp)
    if pending:
        response = redirect(request, f"{TOTP_PATH}?next={target}")
        await _begin(request, response, principal.user_id, mfa_pending=True)
        return response
    response = redirect(request, target)
    await _begin(request, response, principal.user_id)
    return response


async def _pending_viewer(request: Request) -> Viewer | None:
    viewer = await browser_viewer(request)
    return viewer if viewer is not None and viewer.mfa_pending else None


@router.get("/admin/login/totp", include_in_schema=False)
async def totp_form(request: Request, next: str = "") -> Response:
    viewer = await _pending_viewer(request)
    if viewer is None:
        return redirect(request, LOGIN_PATH)
    i18n.set_locale(request_locale(request, viewer))
    return render_page(request, "admin/totp.html", title=_("Two-factor code"), next=safe_next(next))


@router.post("/admin/login/totp", include_in_schema=False)
async def totp_login(request: Request) -> Response:
    state = app_state(request)
    viewer = await _pending_viewer(request)
    if viewer is None:
        return redirect(request, LOGIN_PATH)
    i18n.set_locale(request_locale(request, viewer))
    form = await form_fields(request)
    code = text(form, "code", 64)
    target = safe_next(text(form, "next", 2000))
    address = client_address(request)
    username = viewer.principal.username
    box = state.keys.totp_box

    def check(session: Session) -> str | None:
        login_guard.check(session, address, username)
        user = session.get(User, viewer.principal.user_id)
        if user is None:
            return None
        used = two_factor.verify(session, user, box, code)
        if used is None:
            login_guard.record_failure(session, address, username)
        else:
            login_guard.record_success(session, username)
        return used

    def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return render_page(
            request, "admin/totp.html", title=_("Two-factor code"), next=target, error=message,
            status_code=status, headers=headers,
        )  # fmt: skip

    try:
        used = await run_db(request, check, write=True)
    except Throttled as exc:
        return again(throttled_message(exc), 429, {"Retry-After": str(exc.retry_after)})
    if used is None:
        return again(_("That code is not valid. Enter the current code from your app."), 401)
    flash = None
    if used == "recovery":
        flash = (
            "info",
            _("You signed in with a recovery code; it cannot be used again."),
        )
    response = redirect(request, target, flash=flash)
    await _begin(request, response, viewer.principal.user_id)
    return response


@router.post("/admin/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    i18n.set_locale(request_locale(request))
    token = request.cookies.get(SESSION_COOKIE)
    await run_db(request, lambda s: session_service.revoke(s, token), write=True)
    response = redirect(request, LOGIN_PATH, flash=("success", _("You have signed out.")))
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/admin/first-run", include_in_schema=False)
async def first_run_form(request: Request) -> Response:
    if await run_in_threadpool(_admin_exists, app_state(request)):
        return redirect(request, LOGIN_PATH)
    i18n.set_locale(request_locale(request))
    return render_page(
        request, "admin/first_run.html", title=_("Create the first admin"), values={}, errors={}
    )


@router.post("/admin/first-run", include_in_schema=False)
async def first_run(request: Request) -> Response:
    state = app_state(request)
    i18n.set_locale(request_locale(request))
    form = await form_fields(request)
    values = {
        "username": text(form, "username", 200).strip(),
        "name": text(form, "name", 200),
        "email": text(form, "email", 300),
    }
    password, errors = new_password(form)
    if not values["username"]:
        errors["username"] = _("Enter a user name.")

    def create(session: Session) -> int:
        with state.hashing.hold():
            user = accounts.create_first_admin(
                session,
                values["username"],
                password,
                email=values["email"],
                name=values["name"],
            )
        session.flush()
        return user.id

    if not errors:
        try:
            user_id = await run_db(request, create, write=True)
        except Conflict:
            return redirect(
                request, LOGIN_PATH, flash=("error", _("An admin exists already; sign in."))
            )
        except InvalidInput as exc:
            errors[exc.field] = field_error(exc)
        except Busy:
            errors["password"] = busy_message()
        else:
            log.info("first run: created admin %r", values["username"])
            response = redirect(
                request,
                ADMIN_HOME,
                flash=("success", _("Welcome! Your admin account has been created.")),
            )
            await _begin(request, response, user_id)
            return response
    return render_page(
        request,
        "admin/first_run.html",
        title=_("Create the first admin"),
        values=values,
        errors=errors,
        status_code=400,
    )


async def _smtp_ready(request: Request) -> bool:
    """True when an administrator has saved SMTP settings with an enabled server (the
    built-in default, a server on localhost:25, is not taken as configured)."""

    def ready(session: Session) -> bool:
        if session.get(Setting, "smtp") is None:
            return False
        return bool(sending_config(request, session).smtp)

    return await run_db(request, ready)


@router.get(RESET_PATH, include_in_schema=False)
async def reset_form(request: Request) -> Response:
    i18n.set_locale(request_locale(request))
    return render_page(
        request,
        "admin/reset_request.html",
        title=_("Reset your password"),
        smtp_ready=await _smtp_ready(request),
        sent=False,
    )


@router.post(RESET_PATH, include_in_schema=False)
async def reset_request(request: Request) -> Response:
    locale = request_locale(request)
    i18n.set_locale(locale)
    form = await form_fields(request)
    identifier = text(form, "identifier", 300).strip()
    address = client_address(request)
    if not await _smtp_ready(request):
        return render_page(
            request,
            "admin/reset_request.html",
            title=_("Reset your password"),
            smtp_ready=False,
            sent=False,
            status_code=503,
        )

    def send(session: Session) -> None:
        # Each request counts against the address like a failed sign-in, so that the form
        # cannot be used to flood someone's mailbox.
        login_guard.check(session, address, None)
        login_guard.record_failure(session, address, None)
        made = password_resets.request_reset(session, identifier)
        if not made:
            return
        config = sending_config(request, session)
        sender = direct_sender(request, config)
        for user, token in made:
            link = f"{config.root_url}{RESET_PATH}/confirm?token={token}"
            with i18n.use_locale(user.locale or locale):
                subject = _("Reset your stmails password")
                body = _(
                    "Someone (hopefully you) asked to reset the password of the stmails user "
                    "%(username)s.\n\nOpen this link within an hour to choose a new password:\n"
                    "%(link)s\n\nIf you did not ask for this, ignore this message; your "
                    "password stays as it is."
                ) % {"username": user.username, "link": link}
            content = compile_content(
                subject=subject, body=body, content_type="plain", from_email=config.from_email
            )
            results = sender.send(session, content, raw_targets([user.email]), kind="reset")
            for result in results:
                if result.status != "sent":
                    log.warning(
                        "password reset mail for user %s not sent: %s %s",
                        user.id,
                        result.status,
                        result.error,
                    )
                else:
                    log.info("password reset mail sent for user %s", user.id)

    try:
        await run_db(request, send, write=True)
    except Throttled as exc:
        return render_page(
            request,
            "admin/reset_request.html",
            title=_("Reset your password"),
            smtp_ready=True,
            sent=False,
            error=throttled_message(exc),
            status_code=429,
        )
    return render_page(
        request,
        "admin/reset_request.html",
        title=_("Reset your password"),
        smtp_ready=True,
        sent=True,
    )


def _token_valid(request: Request, token: str) -> Any:
    return run_db(request, lambda s: password_resets.valid_user(s, token) is not None)


def _reset_page(
    request: Request, token: str, valid: bool, errors: dict[str, str], status_code: int
) -> Response:
    """The form to choose a new password (or the notice that the link is dead: 404)."""
    return render_page(
        request,
        "admin/reset_confirm.html",
        title=_("Choose a new password"),
        token=token if valid else "",
        valid=valid,
        errors=errors,
        status_code=status_code if valid else 404,
    )


@router.get(RESET_PATH + "/confirm", include_in_schema=False)
async def reset_confirm_form(request: Request, token: str = "") -> Response:
    i18n.set_locale(request_locale(request))
    return _reset_page(request, token, await _token_valid(request, token), {}, 200)


@router.post(RESET_PATH + "/confirm", include_in_schema=False)
async def reset_confirm(request: Request) -> Response:
    state = app_state(request)
    i18n.set_locale(request_locale(request))
    form = await form_fields(request)
    token = text(form, "token", 200)
    password, errors = new_password(form)

    def reset(session: Session) -> None:
        with state.hashing.hold():
            user = password_resets.reset_password(session, token, password)
        login_guard.record_success(session, user.username)

    valid = True
    if not errors:
        try:
            await run_db(request, reset, write=True)
        except InvalidInput:
            valid = False
        except Busy:
            errors["password"] = busy_message()
        else:
            state.auth_cache.clear()
            return redirect(
                request,
                LOGIN_PATH,
                flash=("success", _("Your password has been changed. Sign in with it.")),
            )
    return _reset_page(request, token, valid, errors, 400)
