"""Signing up: listmonk's `GET /api/public/lists`, `POST /api/public/subscription` (JSON or a
form) and the hosted form `GET`/`POST /subscription/form`, plus the ALTCHA challenge route.

One path serves all three posts (`_sign_up`): the honeypot, the captcha, verification of the
address (`verify.on_subscribe`, with a DNS time budget), the domain lists, the rate limits, the
subscriber, and the confirmation mail, in that order. A refusal stores nothing; a sign-up for
an address that exists gets exactly the answer a new one gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.services import public, settings
from stmails.services.errors import InvalidInput
from stmails.services.public import SignupRefused
from stmails.services.rate_limits import RateLimited
from stmails.verify import Verifier
from stmails.verify.result import Reason
from stmails.web import i18n
from stmails.web.api.verify import default_verifier_factory
from stmails.web.body import json_object, run_db
from stmails.web.errors import ApiError
from stmails.web.i18n import N_
from stmails.web.public import mail
from stmails.web.public.common import (
    CAPTCHA_FIELD,
    HONEYPOT_FIELD,
    captcha_first_use,
    client_ip,
    load_theme,
    locale_of,
    log,
    new_challenge,
    render_public,
    solved_challenge,
)
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["public"])

FORM_PATH = "/subscription/form"
VERIFIER_KEY = "public.verifier_factory"
# What each verification reason tells a visitor whose address it refuses.
REFUSALS = {
    Reason.SYNTAX: N_("This is not a valid e-mail address."),
    Reason.DISPOSABLE: N_("Disposable (throw-away) addresses are not accepted. Use your own."),
    Reason.NXDOMAIN: N_("The domain of this address does not exist."),
    Reason.NO_MX: N_("The domain of this address cannot receive mail."),
    Reason.NULL_MX: N_("The domain of this address does not accept mail."),
    Reason.ROLE: N_("Use a personal address, not a role address such as info@ or sales@."),
    Reason.TYPO: N_("This address looks mistyped."),
}
GENERIC_REFUSAL = N_("This address cannot be accepted.")


@dataclass
class Attempt:
    """One sign-up as submitted."""

    email: str = ""
    name: str = ""
    list_uuids: list[str] = dataclasses.field(default_factory=list)
    honeypot: str = ""
    captcha: str = ""
    keep_typo: bool = False


@dataclass
class Outcome:
    """What became of an attempt: `ok`, or the field and message to show (`suggestion` for a
    likely typo), or a status the page answers with."""

    ok: bool = False
    has_optin: bool = False
    field: str = ""
    message: str = ""
    suggestion: str = ""
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _verifier(request: Request, dns: bool) -> Verifier:
    factory = request.app.state.stmails.extras.get(VERIFIER_KEY, default_verifier_factory)
    verifier: Verifier = factory(not dns)
    return verifier


async def _verify(request: Request, attempt: Attempt, form: bool) -> Outcome | None:
    """The verification of `verify.on_subscribe` (off, flag, reject); an Outcome refusing the
    address, or None to go on. On the form a likely typo asks "did you mean ...?" first."""

    def read(session: Session) -> tuple[str, list[str], bool, float]:
        return (
            settings.get_valid(session, "verify.on_subscribe"),
            settings.get_valid(session, "verify.reject"),
            settings.get_valid(session, "verify.on_subscribe_dns"),
            settings.get_valid(session, "verify.dns_timeout"),
        )

    mode, reject, dns, timeout = await run_db(request, read)
    if mode == "off":
        return None
    verifier = _verifier(request, dns)
    try:
        result = await asyncio.wait_for(
            verifier.verify(attempt.email, deadline=timeout), timeout + 0.5
        )
    except TimeoutError:
        return None
    if form and result.suggestion and not attempt.keep_typo:
        return Outcome(
            field="email",
            message=i18n.gettext("Did you mean %(address)s?") % {"address": result.suggestion},
            suggestion=result.suggestion,
            status=400,
        )
    if mode == "reject":
        refused = [r for r in result.reasons if r.value in reject]
        if refused:
            text = REFUSALS.get(refused[0], GENERIC_REFUSAL)
            return Outcome(field="email", message=i18n.gettext(text), status=400)
    return None


async def _sign_up(request: Request, attempt: Attempt, *, form: bool) -> Outcome:
    """The one sign-up path (see the module)."""
    address = client_ip(request)
    if attempt.honeypot:
        # A bot filled the field people never see: it gets the answer of a success, so that
        # it learns nothing, and nothing is stored or sent.
        log.info("public sign-up refused by the honeypot (client %s)", address)
        return Outcome(ok=True)
    theme = await run_db(request, load_theme)
    challenge: str | None = None
    if theme.captcha:
        challenge = solved_challenge(request, attempt.captcha)
        if challenge is None:
            return Outcome(
                field="captcha",
                message=i18n.gettext(
                    "The anti-robot check was not completed. It needs JavaScript: turn it on, "
                    "wait for the check to finish, and send the form again."
                ),
                status=400,
            )
    if not attempt.email.strip():
        return Outcome(
            field="email", message=i18n.gettext("Enter your e-mail address."), status=400
        )
    refused = await _verify(request, attempt, form)
    if refused is not None:
        return refused

    def work(session: Session) -> Outcome:
        if challenge is not None and not captcha_first_use(session, challenge):
            return Outcome(
                field="captcha",
                message=i18n.gettext(
                    "This anti-robot check was already used. Send the form again."
                ),
                status=400,
            )
        result = public.sign_up(
            session,
            email=attempt.email,
            name=attempt.name,
            list_uuids=attempt.list_uuids,
            client_ip=address,
        )
        if (
            result.subscriber is not None
            and result.to_confirm
            and settings.get_valid(session, "app.send_optin_confirmation")
        ):
            try:
                public.allow_mail(session, result.subscriber.email)
            except RateLimited:
                # The address had its share of confirmation mail: the sign-up stands, and the
                # answer is the same, so nobody learns that a mail went out before.
                log.info(
                    "opt-in mail to subscriber %s held back by its rate limit", result.subscriber.id
                )
            else:
                mail.send_optin(request, session, result.subscriber, result.to_confirm)
        return Outcome(ok=True, has_optin=result.has_optin)

    try:
        return await run_db(request, work, write=True)
    except RateLimited as exc:
        return Outcome(
            field="email",
            message=i18n.gettext("Too many sign-ups. Try again in %(seconds)s seconds.")
            % {"seconds": exc.retry_after},
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except SignupRefused as exc:
        return Outcome(field=exc.field, message=i18n.gettext(_signup_message(exc)), status=400)
    except InvalidInput as exc:
        return Outcome(field="email", message=i18n.gettext(_address_message(exc)), status=400)
    except ApiError as exc:
        if exc.status != 503:
            raise
        return Outcome(
            field="",
            message=i18n.gettext("Sign-up is not possible right now. Try again later."),
            status=503,
            headers={"Retry-After": "60"},
        )


_SIGNUP_MESSAGES = {
    "addresses at this domain are not accepted": N_("Addresses at this domain are not accepted."),
    "choose at least one list": N_("Choose at least one list."),
}


def _signup_message(exc: SignupRefused) -> str:
    return _SIGNUP_MESSAGES.get(exc.message, GENERIC_REFUSAL)


def _address_message(exc: InvalidInput) -> str:
    if "refused by verification" in exc.message:
        return GENERIC_REFUSAL
    return N_("This is not a valid e-mail address.")


# --- the JSON API --------------------------------------------------------------------------


@router.get("/api/public/lists", summary="The public lists (listmonk's public API)")
async def public_lists(request: Request) -> JSONResponse:
    """`[{"uuid": ..., "name": ...}]` of every public list, as listmonk answers: a bare array,
    without the `{"data": ...}` envelope."""

    def work(session: Session) -> list[dict[str, str]]:
        return [{"uuid": m.uuid, "name": m.name} for m in public.public_lists(session)]

    return JSONResponse(await run_db(request, work))


@router.get("/api/public/captcha", summary="A fresh ALTCHA challenge for the sign-up form")
async def captcha_challenge(request: Request) -> JSONResponse:
    theme = await run_db(request, load_theme)
    if not theme.captcha:
        raise ApiError(404, "the captcha is off (settings: security.captcha)")
    return JSONResponse(
        new_challenge(request, theme.captcha_complexity), headers={"Cache-Control": "no-store"}
    )


def _attempt(body: dict[str, Any]) -> Attempt:
    lists = body.get("list_uuids", body.get("l", []))
    if isinstance(lists, str):
        lists = [lists]
    if not isinstance(lists, list):
        lists = []

    def text(name: str, limit: int) -> str:
        value = body.get(name)
        return value[:limit] if isinstance(value, str) else ""

    return Attempt(
        email=text("email", 400),
        name=text("name", 400),
        list_uuids=[u for u in lists if isinstance(u, str)][:100],
        honeypot=text(HONEYPOT_FIELD, 200),
        captcha=text(CAPTCHA_FIELD, 5000),
        keep_typo=body.get("keep_typo") in (True, "1", 1, "true"),
    )


@router.post("/api/public/subscription", summary="Subscribe (listmonk's public API)")
async def public_subscription(request: Request) -> JSONResponse:
    """listmonk's body (`email`, `name`, `list_uuids`), as JSON or a form; `{"data":
    {"has_optin": bool}}` after the commit, 400 naming what is wrong, 429 over a rate limit,
    503 when mail cannot be sent now."""
    i18n.set_locale(locale_of(request))
    attempt = _attempt(await json_object(request))
    enabled = await run_db(
        request, lambda s: settings.get_valid(s, "app.enable_public_subscription_page")
    )
    if not enabled:
        raise ApiError(404, "public subscription is off")
    outcome = await _sign_up(request, attempt, form=False)
    if not outcome.ok:
        raise ApiError(outcome.status, outcome.message, outcome.headers)
    return data({"has_optin": outcome.has_optin})


# --- the hosted form -----------------------------------------------------------------------


async def _form_page(
    request: Request,
    attempt: Attempt,
    outcome: Outcome | None = None,
    *,
    preselect: list[str] | None = None,
) -> Response:
    def read(session: Session) -> tuple[Any, list[Any], bool]:
        return (
            load_theme(session),
            public.public_lists(session),
            settings.get_valid(session, "app.enable_public_subscription_page"),
        )

    theme, lists, enabled = await run_db(request, read)
    if not enabled:
        return await render_public(
            request,
            "message.html",
            title=i18n.gettext("Subscribe"),
            message=i18n.gettext("Subscription through this page is turned off."),
            status_code=404,
            theme=theme,
        )
    chosen = set(preselect if preselect is not None else attempt.list_uuids)
    if not chosen and len(lists) == 1:
        chosen = {lists[0].uuid}
    errors = {outcome.field: outcome.message} if outcome and outcome.field else {}
    return await render_public(
        request,
        "form.html",
        title=i18n.gettext("Subscribe"),
        theme=theme,
        lists=lists,
        chosen=chosen,
        attempt=attempt,
        errors=errors,
        form_message=outcome.message if outcome and not outcome.field else "",
        suggestion=outcome.suggestion if outcome else "",
        status_code=outcome.status if outcome else 200,
        headers=outcome.headers if outcome else None,
    )


@router.get(FORM_PATH, include_in_schema=False)
async def form_page(request: Request) -> Response:
    i18n.set_locale(locale_of(request))
    return await _form_page(request, Attempt(), preselect=request.query_params.getlist("l"))


@router.post(FORM_PATH, include_in_schema=False)
async def form_post(request: Request) -> Response:
    """The hosted (or an embedded) form's post: the thank-you page, or the form again with
    what is wrong (and "did you mean ...?" for a likely typo, as a one-click choice)."""
    i18n.set_locale(locale_of(request))
    async with request.form() as form:
        body: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        body["l"] = [v for v in form.getlist("l") if isinstance(v, str)]
    suggestion = body.get("use_suggestion")
    if isinstance(suggestion, str) and suggestion:
        body["email"] = suggestion
        body["keep_typo"] = "1"
    attempt = _attempt(body)
    enabled = await run_db(
        request, lambda s: settings.get_valid(s, "app.enable_public_subscription_page")
    )
    if not enabled:
        return await _form_page(request, attempt)
    outcome = await _sign_up(request, attempt, form=True)
    if not outcome.ok:
        return await _form_page(request, attempt, outcome)
    return await render_public(
        request,
        "subscribed.html",
        title=i18n.gettext("Thank you"),
        has_optin=outcome.has_optin,
    )
