"""listmonk's template API: `/api/templates` (types `campaign` and `tx`).

A campaign template wraps campaign bodies and must contain `{{ template "content" . }}`; a tx
template is the whole transactional message (its `subject` is the message subject). Both may
use Jinja2 or listmonk's Go-template expressions; a template that does not compile is refused
with 400 naming the problem.

Templates are compiled and rendered on a worker thread, never on the event loop, under the render
budget of `services.sending.template_budget` (a template that would take too long or make too
much is a 400 saying so). Rendering text that is not saved needs `templates:manage`, like saving it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from stmails.db.handles import Session
from stmails.db.models import Template
from stmails.services import templates as template_service
from stmails.services.sending.templates import TemplateRenderError
from stmails.services.templates import SAMPLE_BODY, TYPES
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data, parse_bool, timestamp

__all__ = ["SAMPLE_BODY", "TYPES", "render_sample", "router", "serialize"]

router = APIRouter(tags=["templates"], dependencies=[Depends(require_user)])


def serialize(item: Template) -> dict[str, Any]:
    """A template in listmonk's shape."""
    return {
        "id": item.id,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "name": item.name,
        "body": item.body,
        "type": item.type,
        "subject": item.subject,
        "is_default": item.is_default,
    }


def render_sample(kind: str, body: str, subject: str = "") -> str:
    """The template rendered for a sample subscriber; 400 when it does not compile."""
    try:
        return template_service.render_sample(kind, body, subject)
    except TemplateRenderError as exc:
        raise bad_request(f"body: {exc}") from None


def _all_templates(session: Session, no_body: bool = False) -> list[dict[str, Any]]:
    found = [serialize(t) for t in template_service.listed(session)]
    if no_body:
        for item in found:
            item["body"] = ""
    return found


@router.get(
    "/templates", dependencies=[require_permission("templates:get")], summary="List templates"
)
async def list_templates(request: Request, no_body: str = "") -> JSONResponse:
    """Every template; listmonk's `no_body=true` leaves the bodies out."""
    without_body = parse_bool(no_body, "no_body")
    return data(await run_db(request, lambda s: _all_templates(s, without_body)))


@router.get(
    "/templates/{template_id}",
    dependencies=[require_permission("templates:get")],
    summary="Get one template",
)
async def get_template(request: Request, template_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: serialize(template_service.get(s, template_id))))


def _html(body: str) -> Response:
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/templates/{template_id}/preview",
    dependencies=[require_permission("templates:get")],
    summary="Render a template with sample content",
)
async def preview_template(request: Request, template_id: int) -> Response:
    def work(session: Session) -> str:
        template = template_service.get(session, template_id)
        return render_sample(template.type, template.body, template.subject)

    return _html(await run_db(request, work))


@router.post(
    "/templates/preview",
    dependencies=[require_permission("templates:manage")],
    summary="Render an unsaved template",
    openapi_extra=JSON_BODY,
)
async def preview_unsaved(request: Request) -> Response:
    """listmonk's `{"template_type": "campaign"|"tx", "body": ...}` (`type` is read too)."""
    body = await json_object(request)
    kind = body.get("template_type") or body.get("type") or "campaign"
    text = body.get("body")
    if kind not in TYPES or not isinstance(text, str):
        raise bad_request("give template_type (campaign or tx) and body")
    subject = str(body.get("subject") or "")
    return _html(await run_in_threadpool(render_sample, kind, text, subject))


@router.post(
    "/templates",
    dependencies=[require_permission("templates:manage")],
    summary="Create a template",
    openapi_extra=JSON_BODY,
)
async def create_template(request: Request) -> JSONResponse:
    values = await run_in_threadpool(template_service.validate, await json_object(request))

    def work(session: Session) -> dict[str, Any]:
        template = Template(**values)
        session.add(template)
        session.flush()
        return serialize(template)

    return data(await run_db(request, work, write=True))


@router.put(
    "/templates/{template_id}",
    dependencies=[require_permission("templates:manage")],
    summary="Update a template",
    openapi_extra=JSON_BODY,
)
async def update_template(request: Request, template_id: int) -> JSONResponse:
    body = await json_object(request)

    def work(session: Session) -> dict[str, Any]:
        template = template_service.get(session, template_id)
        template_service.store(template, template_service.validate(body, template))
        session.flush()
        return serialize(template)

    return data(await run_db(request, work, write=True))


@router.put(
    "/templates/{template_id}/default",
    dependencies=[require_permission("templates:manage")],
    summary="Make a campaign template the default",
)
async def set_default(request: Request, template_id: int) -> JSONResponse:
    """Makes the campaign template the default; answers every template, as listmonk does."""

    def work(session: Session) -> list[dict[str, Any]]:
        template_service.set_default(session, template_id)
        return _all_templates(session)

    return data(await run_db(request, work, write=True))


@router.delete(
    "/templates/{template_id}",
    dependencies=[require_permission("templates:manage")],
    summary="Delete a template",
)
async def delete_template(request: Request, template_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        template_service.delete(session, template_id)
        return True

    return data(await run_db(request, work, write=True))
