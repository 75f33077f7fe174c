"""The Campaigns section: the list (running campaigns' progress polled by htmx), create and
edit with the content editors, the preview, test sends, status changes behind a confirmation
with the content check's warnings, and a campaign's statistics.

Every action calls the services the API calls (`/api/campaigns...`) and declares its
permission again on its POST route. The preview is the campaign's own HTML: it is served with a
CSP of its own (`sandbox`, no script) and shown in a sandboxed iframe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import CAMPAIGN_STATUSES, CONTENT_TYPES, Campaign
from stmails.services import campaign_records as campaign_service
from stmails.services import lists as list_service
from stmails.services import settings as settings_service
from stmails.services import templates as template_service
from stmails.services.analytics.listmonk import engagement_of_campaigns, link_counts
from stmails.services.content_check import ContentReport, check_campaign
from stmails.services.errors import InvalidInput, NotFound
from stmails.services.pages import Page
from stmails.services.sending.campaigns import (
    CampaignError,
    campaign_stats,
    change_status,
    compile_campaign,
    preview,
)
from stmails.services.sending.compose import Links, unsubscribe_url
from stmails.services.sending.direct import DirectSendError, resolve_subscribers
from stmails.services.sending.routing import DEFAULT_MESSENGER, check_messenger, messenger_of
from stmails.services.tracking.links import tracking_config
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import can, page, redirect, render_page, request_locale
from stmails.web.api.sending_common import direct_sender, sending_config
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.errors import ApiError
from stmails.web.i18n import N_, _

router = APIRouter()

PER_PAGE = 20
MAX_BODY = 5_000_000
MAX_TEST_ADDRESSES = 20
# Statuses an admin may move a campaign to from the page, and the question asked first.
ACTIONS: Mapping[str, tuple[str, str]] = {
    "running": (N_("Start"), N_("Start sending this campaign now?")),
    "scheduled": (N_("Schedule"), N_("Send this campaign at its scheduled time?")),
    "paused": (N_("Pause"), N_("Pause sending? It can be resumed later.")),
    "cancelled": (N_("Cancel"), N_("Cancel this campaign? This cannot be undone.")),
    "draft": (N_("Unschedule"), N_("Return this campaign to a draft?")),
}
STATUS_LABELS: Mapping[str, str] = {
    "draft": N_("Draft"),
    "scheduled": N_("Scheduled"),
    "running": N_("Running"),
    "paused": N_("Paused"),
    "cancelled": N_("Cancelled"),
    "finished": N_("Finished"),
}
CONTENT_LABELS: Mapping[str, str] = {
    "richtext": N_("Rich text"),
    "html": N_("HTML"),
    "markdown": N_("Markdown"),
    "plain": N_("Plain text"),
    "visual": N_("Visual (blocks)"),
}
# The preview is the campaign's HTML: no script, no form, no plugin; images and styles as a
# mail client would show them; framed only by our own pages.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data: https: http:; "
    "style-src 'self' 'unsafe-inline' https:; font-src 'self' data: https:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
PREVIEW_HEADERS = {
    "Content-Security-Policy": PREVIEW_CSP,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class CampaignForm:
    """The fields of the campaign form, as typed (or as stored)."""

    name: str = ""
    subject: str = ""
    from_email: str = ""
    list_ids: list[int] = field(default_factory=list)
    template_id: int | None = None
    content_type: str = "richtext"
    body: str = ""
    altbody: str = ""
    send_at: str = ""
    tags: str = ""
    # `email` or a named SMTP server's `email-<name>` (services.sending.routing).
    messenger: str = DEFAULT_MESSENGER

    @classmethod
    def of(cls, campaign: Campaign, list_ids: list[int]) -> CampaignForm:
        return cls(
            name=campaign.name,
            subject=campaign.subject,
            from_email=campaign.from_email,
            list_ids=list_ids,
            template_id=campaign.template_id,
            content_type=campaign.content_type,
            body=campaign.body,
            altbody=campaign.altbody or "",
            send_at=campaign.send_at.strftime("%Y-%m-%dT%H:%M") if campaign.send_at else "",
            tags=", ".join(campaign.tags or []),
            messenger=campaign.messenger,
        )


def _ids(form: FormData, name: str) -> list[int]:
    out = []
    for value in form.getlist(name):
        if isinstance(value, str) and value.isdigit() and len(value) < 12:
            out.append(int(value))
    return out


def read_form(form: FormData) -> CampaignForm:
    """The campaign form as submitted (cut to the column sizes)."""
    template = text(form, "template_id", 12)
    return CampaignForm(
        name=text(form, "name", 500).strip(),
        subject=text(form, "subject", 1000).strip(),
        from_email=text(form, "from_email", 500).strip(),
        list_ids=_ids(form, "lists"),
        template_id=int(template) if template.isdigit() else None,
        content_type=text(form, "content_type", 20) or "richtext",
        body=text(form, "body", MAX_BODY),
        altbody=text(form, "altbody", MAX_BODY),
        send_at=text(form, "send_at", 40).strip(),
        tags=text(form, "tags", 2000),
        messenger=text(form, "messenger", 100).strip() or DEFAULT_MESSENGER,
    )


def _check_form(values: CampaignForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The service fields of `values` and the errors by field (empty when it can be saved)."""
    errors: dict[str, str] = {}
    if not values.name:
        errors["name"] = _("Give the campaign a name.")
    if not values.subject:
        errors["subject"] = _("Give the campaign a subject.")
    if not values.list_ids:
        errors["lists"] = _("Choose at least one list.")
    if values.content_type not in CONTENT_TYPES:
        errors["content_type"] = _("Choose a content type.")
    send_at = None
    if values.send_at:
        try:
            send_at = datetime.fromisoformat(values.send_at)
        except ValueError:
            errors["send_at"] = _("Give a date and time (UTC).")
        else:
            send_at = send_at.replace(tzinfo=UTC) if send_at.tzinfo is None else send_at
    fields: dict[str, Any] = {
        "from_email": values.from_email,
        "template_id": values.template_id,
        "content_type": values.content_type,
        "body": values.body,
        "altbody": values.altbody or None,
        "send_at": send_at,
        "tags": [t.strip() for t in values.tags.split(",") if t.strip()][:50],
        "messenger": values.messenger,
    }
    return fields, errors


@dataclass
class Choices:
    """What the form offers: the lists, the campaign templates and the messengers."""

    lists: list[tuple[int, str]]
    templates: list[tuple[int, str, bool]]
    messengers: list[str] = field(default_factory=lambda: [DEFAULT_MESSENGER])


def choices(session: Session) -> Choices:
    return Choices(
        list_service.names(session),
        template_service.campaign_choices(session),
        [DEFAULT_MESSENGER, *(m for m in map(messenger_of, _smtp_entries(session)) if m)],
    )


def _smtp_entries(session: Session) -> list[Mapping[str, Any]]:
    """The stored SMTP servers, enabled or not (the messengers a campaign may name)."""
    smtp = settings_service.get_all(session).get("smtp")
    return [e for e in smtp if isinstance(e, Mapping)] if isinstance(smtp, list) else []


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        section="campaigns",
        title="404",
        status_code=404,
        message=_("There is no such campaign."),
    )


# The list.


@router.get("/admin/campaigns", include_in_schema=False)
async def campaigns_page(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all")],
    number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    query: Annotated[str, Query(alias="q", max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    statuses = [status] if status in CAMPAIGN_STATUSES else []

    def work(session: Session) -> tuple[Page[Campaign], list[dict[str, Any]]]:
        found = campaign_service.list_campaigns(
            session, search=query, statuses=statuses, page=number, per_page=PER_PAGE
        )
        ids = [c.id for c in found.results]
        lists = campaign_service.campaign_lists(session, ids)
        bounces = campaign_service.bounce_counts(session, ids)
        engagement = engagement_of_campaigns(session, ids)
        rows = [
            {
                "campaign": c,
                "lists": ", ".join(item.list_name for item in lists[c.id]),
                "bounces": bounces[c.id],
                "views": engagement[c.id][0],
                "clicks": engagement[c.id][1],
            }
            for c in found.results
        ]
        return found, rows

    found, rows = await run_db(request, work)
    base = "/admin/campaigns?" + "&".join(
        f"{k}={v}" for k, v in (("q", query), ("status", status)) if v
    )
    return render_page(
        request,
        "admin/campaigns.html",
        viewer=viewer,
        section="campaigns",
        title=_("Campaigns"),
        campaigns=found,
        rows=rows,
        query=query,
        status=status if statuses else "",
        statuses=[(s, _(STATUS_LABELS[s])) for s in CAMPAIGN_STATUSES],
        status_labels={k: _(v) for k, v in STATUS_LABELS.items()},
        base_url=base.rstrip("?"),
    )


@router.get("/admin/campaigns/{campaign_id}/progress", include_in_schema=False)
async def progress_fragment(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all")], campaign_id: int
) -> Response:
    """The progress cell of one campaign (htmx polls it while the campaign runs)."""

    def work(session: Session) -> tuple[Campaign | None, int | None]:
        found = session.get(Campaign, campaign_id)
        if found is None or found.status != "running":
            return found, None
        # The sending rate from the running campaigns' stats (`/api/campaigns/running/stats`).
        rate = next(
            (s["rate"] for s in campaign_service.running_stats(session) if s["id"] == found.id),
            None,
        )
        return found, rate

    found, rate = await run_db(request, work)
    if found is None:
        # Deleted meanwhile: an empty cell that polls no more (a 404 would be a console error).
        return Response('<span class="progress-cell"></span>', media_type="text/html")
    return render_page(
        request,
        "admin/campaign_progress.html",
        viewer=viewer,
        campaign=found,
        rate=rate,
        status_labels={k: _(v) for k, v in STATUS_LABELS.items()},
    )


# Create and edit.


def _editor_page(
    request: Request,
    viewer: Viewer,
    *,
    values: CampaignForm,
    options: Choices,
    campaign: Campaign | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
    report: ContentReport | None = None,
    stats: Mapping[str, Any] | None = None,
) -> Response:
    return render_page(
        request,
        "admin/campaign.html",
        viewer=viewer,
        section="campaigns",
        title=campaign.name if campaign else _("New campaign"),
        status_code=status_code,
        campaign=campaign,
        values=values,
        options=options,
        errors=dict(errors or {}),
        content_types=[(t, _(CONTENT_LABELS[t])) for t in CONTENT_TYPES],
        status_labels={k: _(v) for k, v in STATUS_LABELS.items()},
        actions=_actions_of(viewer, campaign),
        editable=campaign is None or campaign.status in campaign_service.EDITABLE,
        report=report,
        locale_key="zh_CN" if request_is_chinese(request, viewer) else "en",
        stats=stats,
    )


def request_is_chinese(request: Request, viewer: Viewer) -> bool:
    return request_locale(request, viewer).startswith("zh")


def _actions_of(viewer: Viewer, campaign: Campaign | None) -> list[dict[str, str]]:
    """The status changes the viewer may make now, with their labels and questions."""
    if campaign is None or not can(viewer, "campaigns:send"):
        return []
    allowed = campaign_service.TRANSITIONS[campaign.status] - {"finished"}
    out = []
    for status, (label, question) in ACTIONS.items():
        if status not in allowed:
            continue
        if status == "scheduled" and campaign.send_at is None:
            continue
        shown = _("Resume") if status == "running" and campaign.status == "paused" else _(label)
        out.append(
            {
                "status": status,
                "label": shown,
                "question": _(question),
                "kind": "danger" if status == "cancelled" else "primary",
            }
        )
    return out


@router.get("/admin/campaigns/new", include_in_schema=False)
async def new_campaign(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:manage_all")]
) -> Response:
    options = await run_db(request, choices)
    default = next((t[0] for t in options.templates if t[2]), None)
    return _editor_page(request, viewer, values=CampaignForm(template_id=default), options=options)


@router.post("/admin/campaigns/new", include_in_schema=False)
async def create_campaign(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:manage_all")]
) -> Response:
    values = read_form(await form_fields(request))
    fields, errors = _check_form(values)

    def work(session: Session) -> tuple[int | None, Choices, dict[str, str]]:
        if errors:
            return None, choices(session), errors
        try:
            check_messenger(_smtp_entries(session), values.messenger, "messenger")
            created = campaign_service.create(
                session,
                name=values.name,
                subject=values.subject,
                list_ids=values.list_ids,
                **fields,
            )
        except (InvalidInput, NotFound) as exc:
            session.rollback()
            return None, choices(session), _service_error(exc)
        return created.id, choices(session), {}

    created, options, problems = await run_db(request, work, write=True)
    if created is None:
        return _editor_page(
            request, viewer, values=values, options=options, errors=problems, status_code=400
        )
    return redirect(
        request,
        f"/admin/campaigns/{created}",
        flash=("success", _("The campaign was created.")),
    )


def _service_error(exc: InvalidInput | NotFound) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        return {exc.field if exc.field in _FIELDS else "form": str(exc)}
    return {"form": str(exc)}


_FIELDS = frozenset(
    {"name", "subject", "lists", "content_type", "send_at", "template_id", "messenger"}
)


@dataclass
class Loaded:
    campaign: Campaign
    list_ids: list[int]
    options: Choices
    report: ContentReport | None
    stats: dict[str, Any]


def _load(request: Request, session: Session, campaign_id: int, *, check: bool) -> Loaded | None:
    found = session.get(Campaign, campaign_id)
    if found is None:
        return None
    list_ids = [
        item.list_id
        for item in campaign_service.campaign_lists(session, [found.id])[found.id]
        if item.list_id is not None
    ]
    report: ContentReport | None = None
    report_error = ""
    if check and found.status in {"draft", "scheduled", "paused"}:
        try:
            report = check_campaign(session, found, sending_config(request, session))
        except ApiError as exc:
            report_error = exc.message
        except (CampaignError, InvalidInput) as exc:
            report_error = str(exc)
    stats = {
        "send_errors": found.send_errors,
        "last_errors": list(found.last_errors or [])[:10],
        "pause_reason": found.pause_reason,
        "report_error": report_error,
    }
    session.expunge(found)
    return Loaded(found, list_ids, choices(session), report, stats)


@router.get("/admin/campaigns/{campaign_id}", include_in_schema=False)
async def campaign_page(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all")], campaign_id: int
) -> Response:
    loaded = await run_db(request, lambda s: _load(request, s, campaign_id, check=True))
    if loaded is None:
        return _not_found(request, viewer)
    return _editor_page(
        request,
        viewer,
        values=CampaignForm.of(loaded.campaign, loaded.list_ids),
        options=loaded.options,
        campaign=loaded.campaign,
        report=loaded.report,
        stats=loaded.stats,
    )


@router.post("/admin/campaigns/{campaign_id}", include_in_schema=False)
async def update_campaign(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:manage_all")],
    campaign_id: int,
) -> Response:
    values = read_form(await form_fields(request))
    fields, errors = _check_form(values)

    def work(session: Session) -> tuple[bool | None, dict[str, str]]:
        found = session.get(Campaign, campaign_id)
        if found is None:
            return None, {}
        if errors:
            return False, errors
        try:
            check_messenger(_smtp_entries(session), values.messenger, "messenger")
            campaign_service.update_campaign(
                session,
                found,
                list_ids=values.list_ids,
                name=values.name,
                subject=values.subject,
                **fields,
            )
        except (InvalidInput, NotFound) as exc:
            session.rollback()
            return False, _service_error(exc)
        return True, {}

    saved, problems = await run_db(request, work, write=True)
    if saved is None:
        return _not_found(request, viewer)
    if not saved:
        loaded = await run_db(request, lambda s: _load(request, s, campaign_id, check=False))
        if loaded is None:
            return _not_found(request, viewer)
        return _editor_page(
            request,
            viewer,
            values=values,
            options=loaded.options,
            campaign=loaded.campaign,
            errors=problems,
            status_code=400,
            stats=loaded.stats,
        )
    return redirect(
        request, f"/admin/campaigns/{campaign_id}", flash=("success", _("The campaign was saved."))
    )


def _gone(request: Request) -> Response:
    return redirect(request, "/admin/campaigns", flash=("error", _("There is no such campaign.")))


# Preview.


def _preview_response(media_type: str, body: str) -> Response:
    return Response(body, media_type=f"{media_type}; charset=utf-8", headers=PREVIEW_HEADERS)


def _preview_error(message: str) -> Response:
    return _preview_response(
        "text/html", f"<!doctype html><p>{escape(_('The preview failed:'))} {escape(message)}</p>"
    )


@router.get("/admin/campaigns/{campaign_id}/preview", include_in_schema=False)
async def preview_saved(
    request: Request, viewer: Annotated[Viewer, page("campaigns:get_all")], campaign_id: int
) -> Response:
    """The saved campaign rendered for a sample subscriber (inside the page's iframe)."""
    del viewer

    def work(session: Session) -> tuple[str, str] | None:
        found = session.get(Campaign, campaign_id)
        if found is None:
            return None
        try:
            return preview(session, found, None, sending_config(request, session))
        except (CampaignError, ApiError) as exc:
            return "error", str(exc)

    result = await run_db(request, work)
    if result is None:
        return Response(status_code=404)
    if result[0] == "error":
        return _preview_error(result[1])
    return _preview_response(*result)


@router.post("/admin/campaigns/{campaign_id}/preview", include_in_schema=False)
async def preview_unsaved(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:manage_all")],
    campaign_id: int,
) -> Response:
    """The campaign rendered with the form's unsaved body, content type and template (nothing
    is saved)."""
    del viewer
    values = read_form(await form_fields(request))
    if values.content_type not in CONTENT_TYPES:
        return _preview_error(_("Choose a content type."))

    def work(session: Session) -> tuple[str, str] | None:
        found = session.get(Campaign, campaign_id)
        if found is None:
            return None
        session.expunge(found)
        found.body = values.body
        found.content_type = values.content_type
        found.subject = values.subject or found.subject
        if values.template_id:
            found.template_id = values.template_id
        try:
            return preview(session, found, None, sending_config(request, session))
        except (CampaignError, ApiError) as exc:
            return "error", str(exc)

    result = await run_db(request, work)
    if result is None:
        return Response(status_code=404)
    if result[0] == "error":
        return _preview_error(result[1])
    return _preview_response(*result)


# Test send, status changes, delete.


@router.post("/admin/campaigns/{campaign_id}/test", include_in_schema=False)
async def test_send(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:send")],
    campaign_id: int,
) -> Response:
    """Sends the saved campaign to the addresses given (each checked like campaign mail)."""
    del viewer
    form = await form_fields(request)
    emails = [
        e.strip()
        for e in text(form, "addresses", 5000).replace(";", ",").replace("\n", ",").split(",")
        if e.strip()
    ]
    target = f"/admin/campaigns/{campaign_id}"
    if not emails:
        return redirect(request, target, flash=("error", _("Give one or more addresses.")))
    if len(emails) > MAX_TEST_ADDRESSES:
        return redirect(
            request,
            target,
            flash=("error", _("At most %(n)d addresses.") % {"n": MAX_TEST_ADDRESSES}),
        )

    def work(session: Session) -> list[dict[str, Any]] | str | None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        config = sending_config(request, session)
        try:
            content = compile_campaign(session, campaign, config)
            sender = direct_sender(request, config, campaign.messenger)
        except (CampaignError, ApiError) as exc:
            return str(exc)
        try:
            targets = resolve_subscribers(session, emails=emails)
        except DirectSendError as exc:
            return str(exc)
        results = sender.send(
            session,
            content,
            targets,
            kind="test",
            campaign={"uuid": campaign.uuid, "name": campaign.name, "subject": campaign.subject},
            links_for=lambda r: Links(unsubscribe_url(config.root_url, campaign.uuid, r.uuid)),
        )
        return [r.as_dict() for r in results]

    try:
        results = await run_db(request, work, write=True)
    except ApiError as exc:
        return redirect(request, target, flash=("error", exc.message))
    if results is None:
        return _gone(request)
    if isinstance(results, str):
        return redirect(request, target, flash=("error", results))
    sent = [r["recipient"] for r in results if r["status"] == "sent"]
    refused = [
        f"{r['recipient']}: {r.get('error') or r['status']}"
        for r in results
        if r["status"] != "sent"
    ]
    if sent and not refused:
        message = ("success", _("Test sent to %(to)s.") % {"to": ", ".join(sent)})
    elif sent:
        message = (
            "info",
            _("Test sent to %(to)s; not sent: %(refused)s.")
            % {"to": ", ".join(sent), "refused": "; ".join(refused)},
        )
    else:
        refusal = _("The test was not sent: %(refused)s.") % {"refused": "; ".join(refused)}
        message = ("error", refusal)
    return redirect(request, target, flash=message)


@router.post("/admin/campaigns/{campaign_id}/status", include_in_schema=False)
async def set_status(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:send")],
    campaign_id: int,
) -> Response:
    """Start, schedule, pause, resume, cancel or unschedule, under listmonk's rules."""
    del viewer
    status = text(await form_fields(request), "status", 20)
    target = f"/admin/campaigns/{campaign_id}"

    def work(session: Session) -> str | None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        try:
            change_status(session, campaign, status, sending_config(request, session))
        except (CampaignError, InvalidInput) as exc:
            session.rollback()
            return str(exc)
        return ""

    try:
        problem = await run_db(request, work, write=True)
    except ApiError as exc:
        return redirect(request, target, flash=("error", exc.message))
    if problem is None:
        return _gone(request)
    if problem:
        return redirect(request, target, flash=("error", problem))
    done = {
        "running": _("The campaign is running."),
        "scheduled": _("The campaign is scheduled."),
        "paused": _("The campaign is paused."),
        "cancelled": _("The campaign was cancelled."),
        "draft": _("The campaign is a draft again."),
    }
    return redirect(request, target, flash=("success", done.get(status, "")))


@router.post("/admin/campaigns/{campaign_id}/delete", include_in_schema=False)
async def delete_campaign(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:manage_all")],
    campaign_id: int,
) -> Response:
    del viewer

    def work(session: Session) -> int:
        return campaign_service.delete_campaigns(session, [campaign_id])

    deleted = await run_db(request, work, write=True)
    if not deleted:
        return _gone(request)
    return redirect(request, "/admin/campaigns", flash=("success", _("The campaign was deleted.")))


# Statistics.


@router.get("/admin/campaigns/{campaign_id}/stats", include_in_schema=False)
async def stats_page(
    request: Request,
    viewer: Annotated[Viewer, page("campaigns:get_all", "campaigns:get_analytics")],
    campaign_id: int,
) -> Response:
    def work(session: Session) -> dict[str, Any] | None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        counters = campaign_stats(session, campaign_id)
        views, clicks = engagement_of_campaigns(session, [campaign_id])[campaign_id]
        start = (campaign.started_at or campaign.created_at) - timedelta(days=1)
        end = datetime.now(UTC) + timedelta(days=1)
        links = link_counts(
            session,
            [campaign_id],
            start,
            end,
            individual=tracking_config(session).individual,
        )
        session.expunge(campaign)
        return {
            "campaign": campaign,
            "counters": counters,
            "views": views,
            "clicks": clicks,
            "links": links,
            "start": start.strftime("%Y-%m-%d"),
            "end": end.strftime("%Y-%m-%d"),
        }

    found = await run_db(request, work)
    if found is None:
        return _not_found(request, viewer)
    return render_page(
        request,
        "admin/campaign_stats.html",
        viewer=viewer,
        section="campaigns",
        title=_("Statistics: %(name)s") % {"name": found["campaign"].name},
        status_labels={k: _(v) for k, v in STATUS_LABELS.items()},
        **found,
    )
