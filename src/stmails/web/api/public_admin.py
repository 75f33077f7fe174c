"""The admin's side of the subscriber pages (listmonk's routes): resend the opt-in mail,
export a subscriber's data, put a campaign in the archive, and the sign-up form snippet.

| route | permission |
| --- | --- |
| `POST /api/subscribers/{id}/optin` | `subscribers:manage` |
| `GET /api/subscribers/{id}/export` | `subscribers:get` |
| `PUT /api/campaigns/{id}/archive` | `campaigns:manage_all` |
| `GET /api/public/form-snippet?list_id=...` | `lists:get_all` |
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import MailingList
from stmails.services import archive, public
from stmails.services import campaign_records as campaign_service
from stmails.services import lists as list_service
from stmails.services import subscribers as subscriber_service
from stmails.services.sending.templates import escape_html
from stmails.web.api.campaigns import archive_fields, serialized
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, query_ids, run_db
from stmails.web.deps import app_state, require_user
from stmails.web.errors import bad_request
from stmails.web.list_scope import guard
from stmails.web.permissions import require_permission
from stmails.web.public import mail
from stmails.web.responses import JSONResponse, data

router = APIRouter(tags=["public pages"], dependencies=[Depends(require_user), guard])


@router.post(
    "/subscribers/{subscriber_id}/optin",
    dependencies=[require_permission("subscribers:manage")],
    summary="Send the opt-in confirmation mail again",
)
async def resend_optin(request: Request, subscriber_id: int) -> JSONResponse:
    """Mails the confirmation of the subscriber's unconfirmed double opt-in lists; 400 when
    there is none, 422 when SMTP refused it, 503 without an SMTP server."""

    def work(session: Session) -> bool:
        subscriber = subscriber_service.get(session, subscriber_id)
        waiting = public.unconfirmed_lists(session, subscriber.id)
        if not waiting:
            raise bad_request("the subscriber has no list waiting for confirmation")
        return mail.send_optin(request, session, subscriber, waiting)

    if not await run_db(request, work, write=True):
        return JSONResponse({"message": "the opt-in mail was not sent (see the logs)"}, 422)
    return data(True)


@router.get(
    "/subscribers/{subscriber_id}/export",
    dependencies=[require_permission("subscribers:get")],
    summary="Everything stored about a subscriber (listmonk's export)",
)
async def export_subscriber(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        return public.export_data(session, subscriber_service.get(session, subscriber_id))

    return data(await run_db(request, work))


@router.put(
    "/campaigns/{campaign_id}/archive",
    dependencies=[require_permission("campaigns:manage_all")],
    summary="Publish a campaign in the public archive",
    openapi_extra=JSON_BODY,
)
async def put_archive(request: Request, campaign_id: int) -> JSONResponse:
    """listmonk's body: `archive` (bool), `archive_slug`, `archive_template_id` (null: the
    campaign's own template), `archive_meta` (the subscriber data it renders with)."""
    fields = archive_fields(await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        campaign = campaign_service.get(session, campaign_id)
        archive.set_archive(session, campaign, **fields)
        return serialized(session, [campaign])[0]

    return data(await run_db(request, work, write=True))


@router.get(
    "/public/form-snippet",
    dependencies=[require_permission("lists:get_all")],
    summary="HTML of a sign-up form to paste into a website",
)
async def form_snippet(request: Request) -> JSONResponse:
    """A plain HTML form posting to `/subscription/form` for the given public lists
    (`list_id`, repeated; default: every public list)."""
    ids = query_ids(request.query_params.getlist("list_id"), "list_id")
    root = app_state(request).settings.root_url.rstrip("/")

    def work(session: Session) -> list[MailingList]:
        lists = public.public_lists(session)
        if ids:
            lists = [m for m in lists if m.id in ids]
            missing = set(ids) - {m.id for m in lists}
            if missing:
                found = list_service.existing_ids(session, missing)
                raise bad_request(
                    f"list_id: not public lists: {sorted(missing)}"
                    + ("" if found else " (unknown)")
                )
        return lists

    lists = await run_db(request, work)
    return data({"html": snippet(root, lists)})


def snippet(root: str, lists: list[MailingList]) -> str:
    """The embeddable form (no script; the honeypot field hidden by its attribute)."""
    boxes = "\n".join(
        f'    <label><input type="checkbox" name="l" value="{escape_html(m.uuid)}" checked> '
        f"{escape_html(m.name)}</label><br>"
        for m in lists
    )
    return (
        f'<form method="post" action="{escape_html(root)}/subscription/form"'
        ' class="stmails-form">\n'
        '  <p><label>E-mail <input type="email" name="email" required></label></p>\n'
        '  <p><label>Name <input type="text" name="name"></label></p>\n'
        f"  <p>\n{boxes}\n  </p>\n"
        '  <input type="text" name="nonce" value="" hidden tabindex="-1" autocomplete="off">\n'
        '  <p><button type="submit">Subscribe</button></p>\n'
        "</form>\n"
    )
