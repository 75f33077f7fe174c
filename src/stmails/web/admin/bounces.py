"""The Bounces pages: `/admin/bounces` (filters, paging, CSV export through the API) and one
bounce (`/admin/bounces/{id}`: diagnostic and provider event shown as text, delete, blocklist).

The filters are the API's (`web.api.bounces.bounce_filter`, the same query parameters as
`GET /api/bounces`), so the export link is the API's own CSV of what the page shows.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from stmails.core.reasons.vocabulary import REASONS
from stmails.db.handles import Session
from stmails.db.models import BOUNCE_TYPES
from stmails.services import bounces as bounce_service
from stmails.services import campaign_records as campaign_service
from stmails.services import subscribers as subscriber_service
from stmails.services.errors import InvalidInput
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.listing import page_links, with_query
from stmails.web.admin.pages import page, redirect, render_page, safe_next
from stmails.web.api.bounces import bounce_filter
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.errors import ApiError
from stmails.web.i18n import _

router = APIRouter()
log = logging.getLogger(__name__)

BOUNCES_PATH = "/admin/bounces"
PER_PAGE = 50
# Bounces one "delete selected" takes (a page's worth, with room to spare).
MAX_SELECTED = 500
# Campaigns offered in the campaign filter (the newest; any id can still be typed in the URL).
CAMPAIGN_CHOICES = 200
# The reason of a suppression made from a bounce of each type.
SUPPRESSION_REASON = {"hard": "hard_bounce", "soft": "soft_bounce", "complaint": "complaint"}
FILTERS = ("type", "reason", "source", "campaign_id", "domain", "email", "from", "to")


def _campaigns(session: Session) -> list[tuple[int, str]]:
    return campaign_service.newest_names(session, CAMPAIGN_CHOICES)


def _event_fields(meta: Any) -> list[tuple[str, str]]:
    """The provider event or message details kept with a bounce, one (key, text) a field:
    text as it came (a raw message keeps its lines), other values as indented JSON."""
    if not isinstance(meta, dict):
        return [("", json.dumps(meta, indent=2, ensure_ascii=False, default=str))] if meta else []
    return [
        (
            str(key),
            value
            if isinstance(value, str)
            else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        )
        for key, value in sorted(meta.items())
    ]


@router.get(BOUNCES_PATH, include_in_schema=False)
async def bounces_page(
    request: Request,
    viewer: Annotated[Viewer, page("bounces:get")],
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    params = request.query_params
    values = {name: params.get(name, "")[:320] for name in FILTERS}
    error = ""
    found: bounce_service.BouncePage | None = None
    try:
        filters = bounce_filter(
            campaign_id=values["campaign_id"],
            source=values["source"],
            type=values["type"],
            reason=values["reason"],
            email=values["email"],
            domain=values["domain"],
            from_=values["from"],
            to=values["to"],
        )
    except ApiError as exc:
        error = exc.message
        filters = None

    def work(session: Session) -> tuple[bounce_service.BouncePage | None, list[tuple[int, str]]]:
        listed = None
        if filters is not None:
            listed = bounce_service.list_bounces(session, filters, page=number, per_page=PER_PAGE)
        return listed, _campaigns(session)

    try:
        found, campaigns = await run_db(request, work)
    except InvalidInput as exc:
        error = f"{exc.field}: {exc}"
        found, campaigns = None, []
    export = "/api/bounces?" + with_query(request, page=None, format="csv").partition("?")[2]
    return render_page(
        request,
        "admin/bounces.html",
        viewer=viewer,
        section="bounces",
        title=_("Bounces"),
        status_code=400 if error else 200,
        error=error,
        values=values,
        found=found,
        links=page_links(request, found) if found is not None else None,
        types=BOUNCE_TYPES,
        reasons=sorted(REASONS),
        campaigns=campaigns,
        export_url=export,
        here=with_query(request),
    )


@router.get(BOUNCES_PATH + "/{bounce_id}", include_in_schema=False)
async def bounce_page(
    request: Request, viewer: Annotated[Viewer, page("bounces:get")], bounce_id: int
) -> Response:
    found = await run_db(request, lambda s: bounce_service.get_bounce(s, bounce_id))
    if found is None:
        return render_page(
            request,
            "error.html",
            viewer=viewer,
            section="bounces",
            title="404",
            status_code=404,
            message=_("There is no bounce %(id)s.") % {"id": bounce_id},
        )
    return render_page(
        request,
        "admin/bounce.html",
        viewer=viewer,
        section="bounces",
        title=_("Bounce %(id)s") % {"id": bounce_id},
        bounce=found,
        suppression_reason=SUPPRESSION_REASON.get(found.effective_type, "manual"),
        event_fields=_event_fields(found.meta),
    )


@router.post(BOUNCES_PATH + "/{bounce_id}/delete", include_in_schema=False)
async def delete_bounce(
    request: Request, viewer: Annotated[Viewer, page("bounces:manage")], bounce_id: int
) -> Response:
    deleted = await run_db(
        request,
        lambda s: bounce_service.delete_bounces(s, bounce_service.BounceFilter(ids=[bounce_id])),
        write=True,
    )
    if not deleted:
        return redirect(request, BOUNCES_PATH, flash=("error", _("That bounce no longer exists.")))
    log.info("admin %s deleted bounce %s", viewer.principal.username, bounce_id)
    return redirect(
        request, BOUNCES_PATH, flash=("success", _("Bounce %(id)s deleted.") % {"id": bounce_id})
    )


@router.post(BOUNCES_PATH + "/{bounce_id}/blocklist", include_in_schema=False)
async def blocklist_one(
    request: Request,
    viewer: Annotated[Viewer, page("bounces:manage", "subscribers:manage")],
    bounce_id: int,
) -> Response:
    """Blocklists the subscriber the bounce belongs to (unsubscribed from every list)."""
    here = f"{BOUNCES_PATH}/{bounce_id}"

    def work(session: Session) -> str | None:
        found = bounce_service.get_bounce(session, bounce_id)
        if found is None or found.subscriber_id is None:
            return None
        subscriber_service.blocklist(session, [found.subscriber_id])
        return found.email

    email = await run_db(request, work, write=True)
    if email is not None:
        log.info(
            "admin %s blocklisted the subscriber of bounce %s",
            viewer.principal.username,
            bounce_id,
        )
    if email is None:
        return redirect(
            request,
            here,
            flash=("error", _("This bounce belongs to no subscriber: nobody was blocklisted.")),
        )
    return redirect(
        request, here, flash=("success", _("%(email)s is blocklisted.") % {"email": email})
    )


@router.post(BOUNCES_PATH + "/delete", include_in_schema=False)
async def delete_many(
    request: Request, viewer: Annotated[Viewer, page("bounces:manage")]
) -> Response:
    """The bounces ticked in the list (`id`, repeated), or every bounce (`all=true`): listmonk's
    `DELETE /api/bounces?id=..` and `?all=true`."""
    form = await form_fields(request)
    back = safe_next(text(form, "back", 2000) or BOUNCES_PATH)
    if text(form, "all", 10) == "true":
        chosen = bounce_service.BounceFilter()
    else:
        ids = [
            int(v) for v in form.getlist("id")[:MAX_SELECTED] if isinstance(v, str) and v.isdigit()
        ]
        if not ids:
            return redirect(request, back, flash=("error", _("Tick the bounces to delete first.")))
        chosen = bounce_service.BounceFilter(ids=ids)
    count = await run_db(request, lambda s: bounce_service.delete_bounces(s, chosen), write=True)
    log.info("admin %s deleted %d bounces", viewer.principal.username, count)
    return redirect(
        request, back, flash=("success", _("Bounces deleted: %(count)d.") % {"count": count})
    )


@router.post(BOUNCES_PATH + "/blocklist", include_in_schema=False)
async def blocklist_all(
    request: Request, viewer: Annotated[Viewer, page("bounces:manage")]
) -> Response:
    """listmonk's "blocklist all bounced subscribers" (PUT /api/bounces/blocklist)."""
    count = await run_db(request, bounce_service.blocklist_bounced, write=True)
    log.info("admin %s blocklisted %d bounced subscribers", viewer.principal.username, count)
    return redirect(
        request,
        BOUNCES_PATH,
        flash=("success", _("Subscribers blocklisted: %(count)d.") % {"count": count}),
    )
