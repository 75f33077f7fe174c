"""What a subscriber does from a link in their mail: confirm, unsubscribe, manage, export, wipe.

- `GET`/`POST /subscription/optin/{subscriber_uuid}` (`?t=` the signed token of the
  confirmation mail, or `?c=` the campaign of an opt-in campaign; `l` the lists): the page lists
  the subscriptions waiting for confirmation and its button confirms them. Only the POST acts,
  so a mail scanner that follows links confirms nothing.
- `GET`/`POST /subscription/{campaign_uuid or token}/{subscriber_uuid}`: the unsubscribe and
  preferences page behind `{{ UnsubscribeURL }}` and `{{ ManageURL }}`. A POST whose body is
  `List-Unsubscribe=One-Click` is RFC 8058's one-click unsubscribe, unchanged.
- `POST /subscription/export/{subscriber_uuid}` and `POST /subscription/wipe/{subscriber_uuid}`
  (the form's field `k` carries the link's first part).

The catch-all pair route is registered last, so the fixed paths above it win. Each checks
the link as a pair (services.public.resolve_link); a link that does not hold gets
one "not valid" page whatever the reason, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.services import public, settings
from stmails.services.public import LinkTarget
from stmails.services.rate_limits import RateLimited
from stmails.services.sending.unsubscribe import unsubscribe
from stmails.web import i18n
from stmails.web.body import run_db
from stmails.web.errors import ApiError
from stmails.web.public import mail
from stmails.web.public.common import (
    client_ip,
    invalid_link,
    link_secret,
    locale_of,
    log,
    message_page,
    render_public,
    same_site,
)

router = APIRouter(tags=["public"])

PRIVACY_KEYS = ("allow_blocklist", "allow_preferences", "allow_export", "allow_wipe")
ONE_CLICK = b"List-Unsubscribe=One-Click"


def _privacy(session: Session) -> dict[str, bool]:
    return {key: bool(settings.get_valid(session, f"privacy.{key}")) for key in PRIVACY_KEYS}


async def _cross_site(request: Request) -> Response:
    with i18n.use_locale(locale_of(request)):
        title = i18n.gettext("Not accepted")
        text = i18n.gettext(
            "This form was sent from another site. Open the link in your mail again."
        )
    return await message_page(request, title, text, 403)


# --- opt-in --------------------------------------------------------------------------------


def _optin_key(request: Request, values: Any) -> str:
    return str(values.get("t") or values.get("c") or "")[:64]


@router.get("/subscription/optin/{subscriber_uuid}", include_in_schema=False)
async def optin_page(request: Request, subscriber_uuid: str) -> Response:
    i18n.set_locale(locale_of(request))
    key = _optin_key(request, request.query_params)
    wanted = request.query_params.getlist("l")[:100]
    secret = link_secret(request)

    def work(session: Session) -> tuple[LinkTarget, list[Any]] | None:
        target = public.resolve_link(session, secret, key, subscriber_uuid)
        if target is None:
            return None
        waiting = public.unconfirmed_lists(session, target.subscriber.id)
        if wanted:
            waiting = [m for m in waiting if m.uuid in wanted]
        return target, waiting

    found = await run_db(request, work)
    if found is None:
        return await invalid_link(request)
    target, waiting = found
    return await render_public(
        request,
        "optin.html",
        title=i18n.gettext("Confirm your subscription"),
        email=target.subscriber.email,
        waiting=waiting,
        key_name="t" if target.campaign is None else "c",
        key=target.key,
        wanted=wanted,
        confirmed=None,
        manage_url=f"/subscription/{target.key}/{target.subscriber.uuid}",
    )


@router.post("/subscription/optin/{subscriber_uuid}", include_in_schema=False)
async def optin_confirm(request: Request, subscriber_uuid: str) -> Response:
    i18n.set_locale(locale_of(request))
    if not same_site(request):
        return await _cross_site(request)
    async with request.form() as form:
        key = _optin_key(request, form)
        wanted = [v for v in form.getlist("l") if isinstance(v, str)][:100]
    secret = link_secret(request)
    address = client_ip(request)

    def work(session: Session) -> tuple[LinkTarget, list[Any]] | None:
        target = public.resolve_link(session, secret, key, subscriber_uuid)
        if target is None:
            return None
        confirmed = public.confirm(session, target.subscriber, wanted, client_ip=address)
        if confirmed:
            log.info(
                "subscriber %s confirmed lists %s",
                target.subscriber.id,
                [m.id for m in confirmed],
            )
        return target, confirmed

    found = await run_db(request, work, write=True)
    if found is None:
        return await invalid_link(request)
    target, confirmed = found
    return await render_public(
        request,
        "optin.html",
        title=i18n.gettext("Subscription confirmed"),
        email=target.subscriber.email,
        waiting=[],
        key_name="t" if target.campaign is None else "c",
        key=target.key,
        wanted=wanted,
        confirmed=confirmed,
        manage_url=f"/subscription/{target.key}/{target.subscriber.uuid}",
    )


# --- export and wipe -----------------------------------------------------------------------


async def _data_post(request: Request) -> tuple[str, bytes] | Response:
    """The link key (form field `k`) and signing secret of an export or wipe post, or the
    refusal of a cross-site one."""
    i18n.set_locale(locale_of(request))
    if not same_site(request):
        return await _cross_site(request)
    async with request.form() as form:
        key = str(form.get("k") or "")[:64]
    return key, link_secret(request)


@router.post("/subscription/export/{subscriber_uuid}", include_in_schema=False)
async def export_post(request: Request, subscriber_uuid: str) -> Response:
    """Mails the subscriber their data (`privacy.allow_export`), within the per-address mail
    limit."""
    locale = locale_of(request)
    checked = await _data_post(request)
    if isinstance(checked, Response):
        return checked
    key, secret = checked

    def work(session: Session) -> str | None:
        target = public.resolve_link(session, secret, key, subscriber_uuid)
        if target is None:
            return None
        if not settings.get_valid(session, "privacy.allow_export"):
            return "forbidden"
        try:
            public.allow_mail(session, target.subscriber.email)
        except RateLimited:
            return "limited"
        return "sent" if mail.send_export(request, session, target.subscriber, locale) else "failed"

    try:
        outcome = await run_db(request, work, write=True)
    except ApiError as exc:
        if exc.status != 503:
            raise
        outcome = "failed"
    if outcome is None:
        return await invalid_link(request)
    title = i18n.gettext("Your data")
    texts = {
        "sent": (i18n.gettext("We have mailed your data to your address."), 200),
        "forbidden": (i18n.gettext("Exporting your data is not offered here."), 403),
        "limited": (
            i18n.gettext("We mailed this address recently. Try again later."),
            429,
        ),
        "failed": (
            i18n.gettext("Your data could not be mailed right now. Try again later."),
            503,
        ),
    }
    text, status = texts[outcome]
    return await message_page(request, title, text, status)


@router.post("/subscription/wipe/{subscriber_uuid}", include_in_schema=False)
async def wipe_post(request: Request, subscriber_uuid: str) -> Response:
    """Deletes the subscriber's data (`privacy.allow_wipe`), keeping only the hash of the
    address in the suppression list."""
    checked = await _data_post(request)
    if isinstance(checked, Response):
        return checked
    key, secret = checked

    def work(session: Session) -> str | None:
        target = public.resolve_link(session, secret, key, subscriber_uuid)
        if target is None:
            return None
        if not settings.get_valid(session, "privacy.allow_wipe"):
            return "forbidden"
        hashed = public.wipe(session, target.subscriber)
        log.info("a subscriber wiped their data (address hash %s…)", hashed[:12])
        return "wiped"

    outcome = await run_db(request, work, write=True)
    if outcome is None:
        return await invalid_link(request)
    if outcome == "forbidden":
        return await message_page(
            request,
            i18n.gettext("Your data"),
            i18n.gettext("Deleting your data is not offered here."),
            403,
        )
    return await message_page(
        request,
        i18n.gettext("Your data has been deleted"),
        i18n.gettext(
            "We deleted your subscriptions and everything we kept about you. Only a one-way "
            "hash of your address remains on our do-not-mail list, so that we never mail you "
            "again; the address itself cannot be read back from it."
        ),
    )


# --- unsubscribe and preferences -----------------------------------------------------------


async def _manage_page(
    request: Request,
    target: LinkTarget,
    privacy: dict[str, bool],
    choices: list[public.Choice],
    *,
    done: str = "",
    status_code: int = 200,
) -> Response:
    return await render_public(
        request,
        "manage.html",
        title=i18n.gettext("Your subscription"),
        subscriber=target.subscriber,
        campaign=target.campaign,
        key=target.key,
        privacy=privacy,
        choices=choices,
        done=done,
        status_code=status_code,
        base=f"/subscription/{target.key}/{target.subscriber.uuid}",
    )


@router.get("/subscription/{campaign_uuid}/{subscriber_uuid}", include_in_schema=False)
async def manage_page(request: Request, campaign_uuid: str, subscriber_uuid: str) -> Response:
    i18n.set_locale(locale_of(request))
    secret = link_secret(request)

    def work(session: Session) -> tuple[LinkTarget, dict[str, bool], list[Any]] | None:
        target = public.resolve_link(session, secret, campaign_uuid, subscriber_uuid)
        if target is None:
            return None
        return target, _privacy(session), public.choices(session, target.subscriber)

    found = await run_db(request, work)
    if found is None:
        return await invalid_link(request)
    return await _manage_page(request, *found)


@router.post("/subscription/{campaign_uuid}/{subscriber_uuid}", include_in_schema=False)
async def manage_post(request: Request, campaign_uuid: str, subscriber_uuid: str) -> Response:
    """RFC 8058 one-click (body `List-Unsubscribe=One-Click`), the page's unsubscribe form
    (`scope` = `campaign` or `all`, `blocklist`), or its preferences form (`manage`, `name`,
    `l` list uuids)."""
    i18n.set_locale(locale_of(request))
    raw = (await request.body())[: 64 * 1024]
    secret = link_secret(request)
    if ONE_CLICK in raw[:1024]:
        result = await run_db(
            request,
            lambda s: unsubscribe(
                s, campaign_uuid, subscriber_uuid, source="one-click", secret=secret
            ),
            write=True,
        )
        if result is None:
            return await invalid_link(request)
        with i18n.use_locale(locale_of(request)):
            title = i18n.gettext("Unsubscribed")
            text = i18n.gettext("%(email)s will receive no more of these mails.") % {
                "email": result.email
            }
        return await message_page(request, title, text)
    if not same_site(request):
        return await _cross_site(request)
    async with request.form() as form:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        chosen = [v for v in form.getlist("l") if isinstance(v, str)][:1000]

    def work(session: Session) -> tuple[LinkTarget, dict[str, bool], list[Any], str] | None:
        target = public.resolve_link(session, secret, campaign_uuid, subscriber_uuid)
        if target is None:
            return None
        privacy = _privacy(session)
        subscriber = target.subscriber
        if fields.get("manage"):
            if not privacy["allow_preferences"]:
                return target, privacy, public.choices(session, subscriber), "forbidden"
            offered = {c.list.uuid: c.list.id for c in public.choices(session, subscriber)}
            public.save_preferences(
                session,
                target,
                name=fields.get("name", "")[:400],
                keep_list_ids=[offered[u] for u in chosen if u in offered],
            )
            done = "saved"
        else:
            every = fields.get("scope") == "all" or target.campaign is None
            unsubscribe(
                session,
                target.key,
                subscriber.uuid,
                source="unsubscribe-page",
                secret=secret,
                every_list=every,
            )
            done = "unsubscribed"
            if fields.get("blocklist") and privacy["allow_blocklist"]:
                public.blocklist_self(session, subscriber)
                done = "blocklisted"
        log.info("subscriber %s: %s through the preferences page", subscriber.id, done)
        return target, privacy, public.choices(session, subscriber), done

    found = await run_db(request, work, write=True)
    if found is None:
        return await invalid_link(request)
    target, privacy, choices, done = found
    if done == "forbidden":
        return await _manage_page(request, target, privacy, choices, status_code=403)
    return await _manage_page(request, target, privacy, choices, done=done)
