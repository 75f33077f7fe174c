"""The signed-in user's own account: profile (name, address, language), password, 2FA.

Changing the password ends the user's other sessions; turning 2FA off or making new recovery
codes needs the password again (checked by the guarded authenticator, so wrong guesses count
toward the login throttle). Recovery codes are shown once, on the answer that made them.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import User
from stmails.db.types import utcnow
from stmails.services import accounts, two_factor, users
from stmails.services import sessions as session_service
from stmails.services.errors import InvalidInput
from stmails.services.login_guard import Busy, Throttled
from stmails.web import i18n
from stmails.web.admin.auth import busy_message, field_error, new_password, throttled_message
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.body import run_db
from stmails.web.browser import client_address
from stmails.web.deps import Viewer, app_state, forget_viewer
from stmails.web.i18n import _

router = APIRouter()

PROFILE_PATH = "/admin/profile"
TWO_FACTOR_PATH = "/admin/profile/2fa"
SECRET_KEY = "totp_pending"


def own_user(session: Session, viewer: Viewer) -> User:
    """The signed-in user's row (it exists: the session was loaded with it)."""
    user = session.get(User, viewer.principal.user_id)
    if user is None:
        raise LookupError(f"user {viewer.principal.user_id} is gone")
    return user


def _recovery_codes(
    request: Request, viewer: Viewer, codes: list[str], *, just_enabled: bool
) -> Response:
    """The page that shows new recovery codes, once."""
    return render_page(
        request,
        "admin/recovery_codes.html",
        viewer=viewer,
        title=_("Your recovery codes"),
        codes=codes,
        just_enabled=just_enabled,
    )


def _profile(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/profile.html",
        viewer=viewer,
        title=_("Your profile"),
        values=values or {"name": viewer.name, "email": viewer.email, "locale": viewer.locale},
        errors=errors or {},
        locales=i18n.LOCALES,
        status_code=status_code,
    )


@router.get(PROFILE_PATH, include_in_schema=False)
async def profile_page(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    return _profile(request, viewer)


@router.post(PROFILE_PATH, include_in_schema=False)
async def save_profile(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    form = await form_fields(request)
    values = {
        "name": text(form, "name", 300),
        "email": text(form, "email", 300),
        "locale": text(form, "locale", 20),
    }

    def save(session: Session) -> str:
        user = own_user(session, viewer)
        accounts.update_profile(session, user, **values)
        return user.locale

    try:
        locale = await run_db(request, save, write=True)
    except InvalidInput as exc:
        return _profile(
            request, viewer, values=values, errors={exc.field: field_error(exc)}, status_code=400
        )
    # The confirmation is in the language just chosen.
    with i18n.use_locale(i18n.negotiate(request.headers.get("accept-language"), locale)):
        message = _("Your profile has been saved.")
    return redirect(request, PROFILE_PATH, flash=("success", message))


async def _password_ok(request: Request, viewer: Viewer, password: str) -> str | None:
    """None when `password` is the viewer's, else the sentence telling why not."""
    state = app_state(request)
    try:
        principal = await run_in_threadpool(
            state.authenticate, viewer.principal.username, password, client_address(request)
        )
    except Throttled as exc:
        return throttled_message(exc)
    except Busy:
        return busy_message()
    if principal is None or principal.user_id != viewer.principal.user_id:
        return _("This is not your current password.")
    return None


@router.post(PROFILE_PATH + "/password", include_in_schema=False)
async def change_password(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    state = app_state(request)
    form = await form_fields(request)
    problem = await _password_ok(request, viewer, text(form, "current_password", 1000))
    new, errors = new_password(form, "new_password", "new_password_again")
    if problem:
        errors = {"current_password": problem}
    if errors:
        return _profile(request, viewer, errors=errors, status_code=400)

    def save(session: Session) -> None:
        user = own_user(session, viewer)
        with state.hashing.hold():
            users.update_user(session, user, password=new)
        session_service.revoke_user(session, user.id, keep=viewer.session_token)

    try:
        await run_db(request, save, write=True)
    except Busy:
        return _profile(request, viewer, errors={"new_password": busy_message()}, status_code=503)
    state.auth_cache.clear()
    return redirect(
        request,
        PROFILE_PATH,
        flash=("success", _("Your password has been changed; your other sessions have ended.")),
    )


@router.get(TWO_FACTOR_PATH, include_in_schema=False)
async def two_factor_page(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    def remaining(session: Session) -> int:
        return two_factor.remaining_recovery_codes(session, own_user(session, viewer))

    count = await run_db(request, remaining) if viewer.totp_enabled else 0
    return render_page(
        request,
        "admin/two_factor.html",
        viewer=viewer,
        title=_("Two-factor sign-in"),
        remaining=count,
        error="",
    )


@router.post(TWO_FACTOR_PATH + "/setup", include_in_schema=False)
async def start_setup(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    box = app_state(request).keys.totp_box
    sealed = box.seal(two_factor.new_secret())
    await run_db(
        request,
        lambda s: session_service.set_data(s, viewer.session_id, **{SECRET_KEY: sealed}),
        write=True,
    )
    return redirect(request, TWO_FACTOR_PATH + "/setup")


def _setup_page(
    request: Request, viewer: Viewer, secret: str, *, error: str = "", status_code: int = 200
) -> Response:
    uri = two_factor.provisioning_uri(secret, viewer.principal.username)
    svg = two_factor.qr_svg(uri)
    qr = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return render_page(
        request,
        "admin/two_factor_setup.html",
        viewer=viewer,
        title=_("Set up two-factor sign-in"),
        qr=qr,
        secret=secret,
        error=error,
        status_code=status_code,
    )


def _pending_secret(request: Request, viewer: Viewer) -> str | None:
    box = app_state(request).keys.totp_box
    sealed = viewer.data.get(SECRET_KEY)
    return box.open(sealed) if isinstance(sealed, str) else None


@router.get(TWO_FACTOR_PATH + "/setup", include_in_schema=False)
async def setup_page(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    secret = _pending_secret(request, viewer)
    if secret is None or viewer.totp_enabled:
        return redirect(request, TWO_FACTOR_PATH)
    return _setup_page(request, viewer, secret)


@router.post(TWO_FACTOR_PATH + "/confirm", include_in_schema=False)
async def confirm_setup(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    box = app_state(request).keys.totp_box
    secret = _pending_secret(request, viewer)
    if secret is None or viewer.totp_enabled:
        return redirect(request, TWO_FACTOR_PATH)
    form = await form_fields(request)
    code = text(form, "code", 64)

    def enable(session: Session) -> list[str] | None:
        step = two_factor.matching_step(secret, code, after=None, now=utcnow())
        if step is None:
            return None
        user = own_user(session, viewer)
        codes = two_factor.enable(session, user, box, secret)
        user.totp_last_step = step
        session_service.set_data(session, viewer.session_id, **{SECRET_KEY: None})
        return codes

    codes = await run_db(request, enable, write=True)
    if codes is None:
        return _setup_page(
            request,
            viewer,
            secret,
            error=_("That code is not valid. Enter the current code from your app."),
            status_code=400,
        )
    forget_viewer(request)
    return _recovery_codes(request, viewer, codes, just_enabled=True)


async def _password_refused(request: Request, viewer: Viewer) -> Response | None:
    """The 2FA page telling why the form's `password` is not the viewer's; None when it is."""
    form = await form_fields(request)
    problem = await _password_ok(request, viewer, text(form, "password", 1000))
    return _two_factor_error(request, viewer, problem) if problem else None


@router.post(TWO_FACTOR_PATH + "/disable", include_in_schema=False)
async def disable(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    refused = await _password_refused(request, viewer)
    if refused is not None:
        return refused

    def off(session: Session) -> None:
        user = own_user(session, viewer)
        two_factor.disable(session, user)

    await run_db(request, off, write=True)
    return redirect(
        request, TWO_FACTOR_PATH, flash=("success", _("Two-factor sign-in is now off."))
    )


@router.post(TWO_FACTOR_PATH + "/recovery-codes", include_in_schema=False)
async def new_codes(request: Request, viewer: Annotated[Viewer, page()]) -> Response:
    refused = await _password_refused(request, viewer)
    if refused is not None:
        return refused

    def make(session: Session) -> list[str]:
        user = own_user(session, viewer)
        if not two_factor.is_enabled(user):
            return []
        return two_factor.new_recovery_codes(session, user)

    codes = await run_db(request, make, write=True)
    if not codes:
        return redirect(request, TWO_FACTOR_PATH)
    return _recovery_codes(request, viewer, codes, just_enabled=False)


def _two_factor_error(request: Request, viewer: Viewer, error: str) -> Response:
    return render_page(
        request,
        "admin/two_factor.html",
        viewer=viewer,
        title=_("Two-factor sign-in"),
        remaining=None,
        error=error,
        status_code=400,
    )
