"""Unsubscribe links: a small confirmation page and the RFC 8058 one-click POST.

`GET /subscription/{campaign_uuid}/{subscriber_uuid}` shows a page with one button;
`POST` to the same URL unsubscribes: mail clients send `List-Unsubscribe=One-Click` there
(RFC 8058), the page's button sends a form. Neither needs a login: the two random uuids in the
URL are the capability. Both change the subscriptions and the suppression list
(services.sending.unsubscribe).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from stmails.services.sending.templates import escape_html
from stmails.services.sending.unsubscribe import find_target, unsubscribe
from stmails.web.body import run_db

router = APIRouter(tags=["unsubscribe"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1>{content}</body></html>"""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    html = PAGE.format(title=escape_html(title), content=content)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


NOT_FOUND = "<p>This unsubscribe link is not valid (or the subscriber was deleted).</p>"


@router.get("/subscription/{campaign_uuid}/{subscriber_uuid}", include_in_schema=False)
async def unsubscribe_page(
    request: Request, campaign_uuid: str, subscriber_uuid: str
) -> HTMLResponse:
    def work(session: Session) -> str | None:
        target = find_target(session, campaign_uuid, subscriber_uuid)
        return None if target is None else target[1].email

    email = await run_db(request, work)
    if email is None:
        return _page("Unsubscribe", NOT_FOUND, 404)
    form = (
        f"<p>Stop sending mail to <strong>{escape_html(email)}</strong>?</p>"
        '<form method="post"><button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", form)


@router.post("/subscription/{campaign_uuid}/{subscriber_uuid}", include_in_schema=False)
async def unsubscribe_post(
    request: Request, campaign_uuid: str, subscriber_uuid: str
) -> HTMLResponse:
    body = (await request.body())[:1024]
    source = "one-click" if b"List-Unsubscribe=One-Click" in body else "unsubscribe-page"
    result = await run_db(
        request,
        lambda s: unsubscribe(s, campaign_uuid, subscriber_uuid, source=source),
        write=True,
    )
    if result is None:
        return _page("Unsubscribe", NOT_FOUND, 404)
    return _page(
        "Unsubscribed",
        f"<p><strong>{escape_html(result.email)}</strong> will receive no more of these mails.</p>",
    )
