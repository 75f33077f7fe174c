"""The Templates section: campaign and transactional templates, their editor and preview, the
default campaign template, and deleting (refused for the default and for templates in use).

The rules of `services.templates`, as `/api/templates` applies them: a template must compile
and render a sample within the render budget before it is saved; the preview is rendered under
that budget and served with a CSP of its own (`sandbox`, no script) into a sandboxed iframe.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import Template
from stmails.services import templates as template_service
from stmails.services.errors import NotFound
from stmails.services.sending.templates import TemplateRenderError
from stmails.services.templates import TYPES, render_sample
from stmails.web.admin.campaigns import PREVIEW_HEADERS
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.i18n import _

router = APIRouter()

MAX_BODY = 1_000_000


def type_labels() -> dict[str, str]:
    return {"campaign": _("Campaign"), "tx": _("Transactional")}


def _rows(session: Session) -> list[dict[str, Any]]:
    used = template_service.campaign_counts(session)
    return [
        {
            "id": item.id,
            "name": item.name,
            "type": item.type,
            "is_default": item.is_default,
            "campaigns": used.get(item.id, 0),
            "updated_at": item.updated_at,
        }
        for item in template_service.by_type_and_name(session)
    ]


@router.get("/admin/templates", include_in_schema=False)
async def templates_page(
    request: Request, viewer: Annotated[Viewer, page("templates:get")]
) -> Response:
    rows = await run_db(request, _rows)
    return render_page(
        request,
        "admin/templates.html",
        viewer=viewer,
        section="templates",
        title=_("Templates"),
        rows=rows,
        type_labels=type_labels(),
    )


def _editor(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, Any],
    template_id: int | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/template.html",
        viewer=viewer,
        section="templates",
        title=values["name"] or _("New template"),
        status_code=status_code,
        template_id=template_id,
        values=values,
        errors=errors or {},
        types=list(type_labels().items()),
    )


def _read(form: Any) -> dict[str, Any]:
    kind = text(form, "type", 20)
    return {
        "name": text(form, "name", 500).strip(),
        "type": kind if kind in TYPES else "campaign",
        "subject": text(form, "subject", 1000),
        "body": text(form, "body", MAX_BODY),
    }


def _problems(values: dict[str, Any]) -> dict[str, str]:
    """The errors of the form (rendering the sample too: a template that does not compile or
    exceeds the render budget is refused)."""
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = _("Give the template a name.")
    if not values["body"].strip():
        errors["body"] = _("The template body is empty.")
        return errors
    if values["type"] == "campaign" and "content" not in values["body"]:
        errors["body"] = _('A campaign template must contain {{ template "content" . }}.')
        return errors
    try:
        render_sample(values["type"], values["body"], values["subject"])
    except TemplateRenderError as exc:
        errors["body"] = str(exc)
    return errors


# Preview.


def _preview(kind: str, body: str, subject: str) -> Response:
    try:
        html = render_sample(kind, body, subject)
    except TemplateRenderError as exc:
        html = f"<!doctype html><p>{escape(_('The preview failed:'))} {escape(str(exc))}</p>"
    return Response(html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


# Before /admin/templates/{template_id}, which would take "preview" for an id.
@router.post("/admin/templates/preview", include_in_schema=False)
async def preview_unsaved(
    request: Request, viewer: Annotated[Viewer, page("templates:get", "templates:manage")]
) -> Response:
    del viewer
    values = _read(await form_fields(request))
    return await run_in_threadpool(_preview, values["type"], values["body"], values["subject"])


@router.get("/admin/templates/new", include_in_schema=False)
async def new_template(
    request: Request,
    viewer: Annotated[Viewer, page("templates:get", "templates:manage")],
    kind: Annotated[str, Query(alias="type", max_length=20)] = "campaign",
) -> Response:
    body = (
        '<!doctype html>\n<html>\n<body>\n{{ template "content" . }}\n</body>\n</html>\n'
        if kind != "tx"
        else "<p>Hello {{ .Subscriber.Name }}</p>\n"
    )
    kind = kind if kind in TYPES else "campaign"
    values = {"name": "", "type": kind, "subject": "", "body": body}
    return _editor(request, viewer, values=values)


@router.post("/admin/templates/new", include_in_schema=False)
async def create_template(
    request: Request, viewer: Annotated[Viewer, page("templates:get", "templates:manage")]
) -> Response:
    values = _read(await form_fields(request))
    errors = await run_in_threadpool(_problems, values)
    if errors:
        return _editor(request, viewer, values=values, errors=errors, status_code=400)

    def work(session: Session) -> int:
        template = Template(**values)
        session.add(template)
        session.flush()
        return template.id

    created = await run_db(request, work, write=True)
    return redirect(
        request, f"/admin/templates/{created}", flash=("success", _("The template was created."))
    )


def _not_found(request: Request, viewer: Viewer) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        section="templates",
        title="404",
        status_code=404,
        message=_("There is no such template."),
    )


def _values(session: Session, template_id: int) -> dict[str, Any] | None:
    found = session.get(Template, template_id)
    if found is None or found.type not in TYPES:
        return None
    return {
        "name": found.name,
        "type": found.type,
        "subject": found.subject or "",
        "body": found.body,
        "is_default": found.is_default,
    }


@router.get("/admin/templates/{template_id}", include_in_schema=False)
async def template_page(
    request: Request, viewer: Annotated[Viewer, page("templates:get")], template_id: int
) -> Response:
    values = await run_db(request, lambda s: _values(s, template_id))
    if values is None:
        return _not_found(request, viewer)
    return _editor(request, viewer, values=values, template_id=template_id)


@router.post("/admin/templates/{template_id}", include_in_schema=False)
async def update_template(
    request: Request,
    viewer: Annotated[Viewer, page("templates:get", "templates:manage")],
    template_id: int,
) -> Response:
    values = _read(await form_fields(request))
    current = await run_db(request, lambda s: _values(s, template_id))
    if current is None:
        return _not_found(request, viewer)
    # The type of a template stays what it was created as.
    values["type"] = current["type"]
    errors = await run_in_threadpool(_problems, values)
    if errors:
        values["is_default"] = current["is_default"]
        return _editor(
            request,
            viewer,
            values=values,
            template_id=template_id,
            errors=errors,
            status_code=400,
        )

    def work(session: Session) -> None:
        template_service.store(template_service.get(session, template_id), values)

    await run_db(request, work, write=True)
    return redirect(
        request, f"/admin/templates/{template_id}", flash=("success", _("The template was saved."))
    )


@router.post("/admin/templates/{template_id}/default", include_in_schema=False)
async def make_default(
    request: Request,
    viewer: Annotated[Viewer, page("templates:get", "templates:manage")],
    template_id: int,
) -> Response:
    del viewer

    def work(session: Session) -> str:
        try:
            template_service.set_default(session, template_id)
        except NotFound:
            return _("There is no such template.")
        except template_service.NotACampaignTemplate:
            return _("Only a campaign template can be the default.")
        return ""

    problem = await run_db(request, work, write=True)
    if problem:
        return redirect(request, "/admin/templates", flash=("error", problem))
    return redirect(
        request,
        "/admin/templates",
        flash=("success", _("The default campaign template was changed.")),
    )


@router.post("/admin/templates/{template_id}/delete", include_in_schema=False)
async def delete_template(
    request: Request,
    viewer: Annotated[Viewer, page("templates:get", "templates:manage")],
    template_id: int,
) -> Response:
    del viewer

    def work(session: Session) -> str:
        try:
            template_service.delete(session, template_id)
        except NotFound:
            return _("There is no such template.")
        except template_service.DefaultNotDeletable:
            return _("The default template cannot be deleted: make another one the default first.")
        except template_service.TemplateInUse as exc:
            return _(
                "The template is used by %(n)d campaigns: choose another template for them first."
            ) % {"n": exc.campaigns}
        return ""

    problem = await run_db(request, work, write=True)
    if problem:
        return redirect(request, "/admin/templates", flash=("error", problem))
    return redirect(request, "/admin/templates", flash=("success", _("The template was deleted.")))


@router.get("/admin/templates/{template_id}/preview", include_in_schema=False)
async def preview_saved(
    request: Request, viewer: Annotated[Viewer, page("templates:get")], template_id: int
) -> Response:
    del viewer
    values = await run_db(request, lambda s: _values(s, template_id))
    if values is None:
        return Response(status_code=404)
    return await run_in_threadpool(_preview, values["type"], values["body"], values["subject"])
