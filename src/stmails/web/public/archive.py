"""The public archive (listmonk's): `/archive`, `/archive/{id or slug}`, `/archive/latest`,
`/archive.xml` (RSS 2.0 made with feedgen), and the theme's `/public/custom.css` and
`/public/logo`.

A campaign's HTML is written by admins and may hold anything, so it never runs in our origin:
the page shows it in an `<iframe sandbox>` whose source, `/archive/{id or slug}/content`, is
served with `Content-Security-Policy: sandbox` (an opaque origin, no script, no forms) and no
script sources at all.
"""

from __future__ import annotations

import base64
import binascii
import re

from fastapi import APIRouter, Query, Request
from feedgen.feed import FeedGenerator
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import Campaign
from stmails.services import archive, settings
from stmails.services.errors import InvalidInput
from stmails.services.public_settings import css_is_safe
from stmails.services.sending.templates import escape_html
from stmails.web import i18n
from stmails.web.api.sending_common import sending_config
from stmails.web.body import run_db
from stmails.web.public.common import locale_of, message_page, render_public

router = APIRouter(tags=["public"])

PER_PAGE = 20
FEED_ITEMS = 50
# The archived message's own page: no script, an opaque origin, images from anywhere (mail
# content links them), inline styles (mail is styled that way).
CONTENT_POLICY = (
    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "font-src * data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
_DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.DOTALL)


async def _archive_enabled(request: Request) -> bool:
    enabled: bool = await run_db(
        request, lambda s: settings.get_valid(s, "app.enable_public_archive")
    )
    return enabled


async def _off(request: Request) -> Response:
    return await message_page(
        request, i18n.gettext("Archive"), i18n.gettext("The archive is turned off."), 404
    )


@router.get("/archive", include_in_schema=False)
async def archive_index(request: Request, page: int = Query(1, ge=1, le=100_000)) -> Response:
    i18n.set_locale(locale_of(request))
    if not await _archive_enabled(request):
        return await _off(request)
    found = await run_db(request, lambda s: archive.listing(s, page=page, per_page=PER_PAGE))
    items = [
        {"subject": c.subject, "href": f"/archive/{archive.slug_of(c)}", "date": archive.when(c)}
        for c in found.results
    ]
    return await render_public(
        request,
        "archive.html",
        title=i18n.gettext("Archive"),
        items=items,
        page=page,
        has_next=page * PER_PAGE < found.total,
    )


@router.get("/archive.xml", include_in_schema=False)
async def archive_feed(request: Request) -> Response:
    """RSS 2.0 of the newest archived campaigns (with their HTML when
    `app.enable_public_archive_rss_content` is on)."""
    if not await _archive_enabled(request):
        return Response("the archive is turned off", status_code=404, media_type="text/plain")

    def work(session: Session) -> bytes:
        config = sending_config(request, session)
        root = config.root_url
        feed = FeedGenerator()
        feed.title(settings.get_valid(session, "app.site_name"))
        feed.link(href=f"{root}/archive", rel="alternate")
        feed.description(f"{settings.get_valid(session, 'app.site_name')} archive")
        with_content = settings.get_valid(session, "app.enable_public_archive_rss_content")
        campaigns = archive.listing(session, page=1, per_page=FEED_ITEMS).results
        # feedgen lists entries newest-first when they are added oldest-first.
        for campaign in reversed(campaigns):
            entry = feed.add_entry()
            link = f"{root}/archive/{archive.slug_of(campaign)}"
            entry.id(link)
            entry.link(href=link)
            entry.title(campaign.subject)
            entry.pubDate(archive.when(campaign))
            if with_content:
                try:
                    shown = archive.render(session, campaign, config, f"{root}/archive")
                except InvalidInput:
                    continue
                entry.description(shown.html or escape_html(shown.text or ""))
        xml: bytes = feed.rss_str(pretty=True)
        return xml

    body = await run_db(request, work)
    return Response(body, media_type="application/rss+xml; charset=utf-8")


async def _campaign(request: Request, id_or_slug: str) -> Campaign | None:
    if id_or_slug == "latest":
        return await run_db(request, archive.latest)
    return await run_db(request, lambda s: archive.find(s, id_or_slug))


@router.get("/archive/{id_or_slug}", include_in_schema=False)
async def archive_page(request: Request, id_or_slug: str) -> Response:
    """One archived campaign: its subject and date, and its content in a sandboxed frame."""
    i18n.set_locale(locale_of(request))
    if not await _archive_enabled(request):
        return await _off(request)
    campaign = await _campaign(request, id_or_slug)
    if campaign is None:
        return await message_page(
            request,
            i18n.gettext("Not found"),
            i18n.gettext("There is no such message in the archive."),
            404,
        )
    return await render_public(
        request,
        "archive_view.html",
        title=campaign.subject,
        subject=campaign.subject,
        date=archive.when(campaign),
        content_url=f"/archive/{archive.slug_of(campaign)}/content",
    )


@router.get("/archive/{id_or_slug}/content", include_in_schema=False)
async def archive_content(request: Request, id_or_slug: str) -> Response:
    """The archived message itself, rendered with `archive_meta`, under a sandbox CSP."""
    if not await _archive_enabled(request):
        return Response("the archive is turned off", status_code=404, media_type="text/plain")

    def work(session: Session) -> tuple[str, str] | None:
        campaign = archive.find(session, id_or_slug)
        if campaign is None:
            return None
        config = sending_config(request, session)
        try:
            shown = archive.render(session, campaign, config, f"{config.root_url}/archive")
        except InvalidInput:
            return "text/plain", "This message cannot be shown."
        if shown.html is not None:
            return "text/html", shown.html
        return "text/plain", shown.text or ""

    found = await run_db(request, work)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    media_type, body = found
    return Response(
        body,
        media_type=f"{media_type}; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


# --- the theme's assets --------------------------------------------------------------------


@router.get("/public/custom.css", include_in_schema=False)
async def custom_css(request: Request) -> Response:
    """`appearance.public.custom_css` as a stylesheet (never inline: the CSP forbids it);
    a stored value that fails the check is not served."""
    css = await run_db(request, lambda s: settings.get_valid(s, "appearance.public.custom_css"))
    if not css_is_safe(css):
        css = ""
    return Response(
        css,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/public/logo", include_in_schema=False)
async def logo(request: Request) -> Response:
    """The logo of `app.logo_url` when it is a data: URL."""
    value = await run_db(request, lambda s: settings.get_valid(s, "app.logo_url"))
    match = _DATA_URL.fullmatch(value or "")
    if match is None:
        return Response("no logo", status_code=404, media_type="text/plain")
    try:
        image = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return Response("no logo", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": "public, max-age=300"}
    if match.group(1) == "image/svg+xml":
        # An SVG opened on its own could run script: it is kept inert.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(image, media_type=match.group(1), headers=headers)
