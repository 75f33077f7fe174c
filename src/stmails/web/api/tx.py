"""Transactional mail: listmonk's `POST /api/tx` and stmails' raw variant `POST /api/tx/raw`.

`POST /api/tx` takes listmonk's body: `template_id`, one of `subscriber_email`, `subscriber_id`,
`subscriber_emails`, `subscriber_ids`, and optional `from_email`, `subject`, `data` (available
as `{{ .Tx.Data.* }}` / `{{ tx.data.* }}`), `headers` (`[{"Name": "value"}]`) and
`content_type` (html, markdown, plain). File attachments (multipart) are not supported.

`POST /api/tx/raw` sends given content to bare addresses: `to` (one or a list), `subject`,
`from_email`, `body` with `content_type`, optional `altbody` and `headers`.

Both check each recipient just before SMTP: a suppressed address (global or domain) or an unknown
or blocklisted subscriber is refused with its reason, as SparkPost does on injection. The
answer lists every recipient; it is 200 when at least one was sent to, else 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.services.sending.compose import compile_content
from stmails.services.sending.direct import (
    DirectSendError,
    raw_targets,
    resolve_subscribers,
    tx_content,
)
from stmails.services.sending.messages import MessageError, custom_headers
from stmails.services.sending.templates import TemplateRenderError
from stmails.web.api.sending_common import direct_sender, per_recipient, sending_config
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse

router = APIRouter(tags=["transactional"], dependencies=[Depends(require_user)])


def _list_of(body: dict[str, Any], one: str, many: str, kind: type) -> list[Any]:
    values: list[Any] = []
    if body.get(one) not in (None, ""):
        values.append(body[one])
    extra = body.get(many) or []
    if not isinstance(extra, list):
        raise bad_request(f"{many}: expected a list")
    values.extend(extra)
    for value in values:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad_request(f"{one}: expected {kind.__name__} values")
    return values


@router.post(
    "/tx",
    dependencies=[require_permission("tx:send")],
    summary="Send a transactional message",
    openapi_extra=JSON_BODY,
)
async def send_tx(request: Request) -> JSONResponse:
    body = await json_object(request)
    template_id = body.get("template_id")
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        raise bad_request("template_id: required (a number)")
    emails = _list_of(body, "subscriber_email", "subscriber_emails", str)
    ids = _list_of(body, "subscriber_id", "subscriber_ids", int)
    if not emails and not ids:
        raise bad_request("give subscriber_email(s) or subscriber_id(s)")
    tx_data = body.get("data") or {}
    if not isinstance(tx_data, dict):
        raise bad_request("data: expected a JSON object")

    def work(session: Session) -> list[dict[str, Any]]:
        config = sending_config(request, session)
        try:
            content = tx_content(
                session,
                template_id,
                content_type=str(body.get("content_type") or "html"),
                from_email=str(body.get("from_email") or ""),
                subject=str(body.get("subject") or ""),
                headers=body.get("headers"),
                config=config,
            )
            targets = resolve_subscribers(session, emails=emails, ids=ids)
        except (DirectSendError, MessageError) as exc:
            raise bad_request(str(exc)) from None
        sender = direct_sender(request, config)
        results = sender.send(session, content, targets, kind="tx", tx_data=tx_data)
        return [r.as_dict() for r in results]

    return per_recipient(await run_db(request, work, write=True))


@router.post(
    "/tx/raw",
    dependencies=[require_permission("tx:send")],
    summary="Send given content to addresses",
    openapi_extra=JSON_BODY,
)
async def send_raw(request: Request) -> JSONResponse:
    body = await json_object(request)
    to = body.get("to")
    addresses = [to] if isinstance(to, str) else to
    if not isinstance(addresses, list) or not addresses:
        raise bad_request("to: give an address or a list of addresses")
    if not all(isinstance(a, str) for a in addresses):
        raise bad_request("to: expected text addresses")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise bad_request("body: required")
    content_type = str(body.get("content_type") or "html")
    if content_type not in {"html", "markdown", "plain"}:
        raise bad_request("content_type: expected html, markdown or plain")

    def work(session: Session) -> list[dict[str, Any]]:
        config = sending_config(request, session)
        try:
            content = compile_content(
                subject=str(body.get("subject") or ""),
                body=text,
                content_type=content_type,
                from_email=str(body.get("from_email") or config.from_email),
                altbody=body.get("altbody") if isinstance(body.get("altbody"), str) else None,
                headers=custom_headers(body.get("headers")),
            )
            targets = raw_targets(addresses)
        except (TemplateRenderError, MessageError, DirectSendError) as exc:
            raise bad_request(str(exc)) from None
        sender = direct_sender(request, config)
        results = sender.send(session, content, targets, kind="raw", tx_data=body.get("data") or {})
        return [r.as_dict() for r in results]

    return per_recipient(await run_db(request, work, write=True))
