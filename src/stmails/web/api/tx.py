"""Transactional mail: listmonk's `POST /api/tx` and stmails' raw variant `POST /api/tx/raw`.

`POST /api/tx` takes listmonk's body: `template_id`, one of `subscriber_email`, `subscriber_id`,
`subscriber_emails`, `subscriber_ids`, and optional `from_email`, `subject`, `data` (available
as `{{ .Tx.Data.* }}` / `{{ tx.data.* }}`), `headers` (`[{"Name": "value"}]`) and
`content_type` (html, markdown, plain), `altbody` (the plain-text alternative), `messenger`
(`email`, or `email-<name>` of a named SMTP server) and `subscriber_mode` (`default`:
subscribers only; `fallback`: the subscriber of each address, else the bare address;
`external`: bare addresses, no lookup). As listmonk,
multipart/form-data takes the same fields as JSON in `data` and files in `file` parts
(attachments, at most 10 and 20 MB in all). The answer is listmonk's `{"data": true}` once
every recipient was sent to; with `?results=true`, stmails' per-recipient results.

`POST /api/tx/raw` sends given content to bare addresses: `to` (one or a list), `subject`,
`from_email`, `body` with `content_type`, optional `altbody` and `headers`.

Both check each recipient just before SMTP: a suppressed address (global or domain) or an unknown
or blocklisted subscriber is refused with its reason, as SparkPost does on injection. The
answer lists every recipient; it is 200 when at least one was sent to, else 422.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile

from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep
from stmails.db.handles import Session
from stmails.services.errors import InvalidInput
from stmails.services.sending.compose import compile_content
from stmails.services.sending.direct import (
    SUBSCRIBER_MODES,
    raw_targets,
    tx_content,
    tx_targets,
)
from stmails.services.sending.messages import (
    Attachment,
    attachment_filename,
    attachment_type,
    custom_headers,
)
from stmails.services.sending.routing import DEFAULT_MESSENGER, messengers, servers_for
from stmails.web.api.sending_common import (
    direct_sender,
    listmonk_answer,
    per_recipient,
    sending_config,
)
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import is_json_media_type, json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse

router = APIRouter(tags=["transactional"], dependencies=[Depends(require_user)])

# Attachments of one message: how many files, and their bytes in all.
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# The request body: the attachments and the fields, with room for the multipart framing.
MAX_BODY_BYTES = MAX_ATTACHMENT_BYTES + 1024 * 1024
TX_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {"type": "string", "description": "the fields, as JSON"},
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            },
        },
    }
}


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
    openapi_extra=TX_BODY,
)
async def send_tx(request: Request) -> JSONResponse:
    body, attachments = await _tx_request(request)
    template_id = body.get("template_id")
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        raise bad_request("template_id: required (a number)")
    emails = _list_of(body, "subscriber_email", "subscriber_emails", str)
    ids = _list_of(body, "subscriber_id", "subscriber_ids", int)
    if not emails and not ids:
        raise bad_request("give subscriber_email(s) or subscriber_id(s)")
    mode = body.get("subscriber_mode") or "default"
    if not isinstance(mode, str):
        raise bad_request(f"subscriber_mode: one of {', '.join(SUBSCRIBER_MODES)}")
    messenger = body.get("messenger") or DEFAULT_MESSENGER
    if not isinstance(messenger, str):
        raise bad_request("messenger: expected a messenger's name, like email")
    tx_data = body.get("data") or {}
    if not isinstance(tx_data, dict):
        raise bad_request("data: expected a JSON object")
    altbody = body.get("altbody")
    if altbody is not None and not isinstance(altbody, str):
        raise bad_request("altbody: expected text")

    def work(session: Session) -> list[dict[str, Any]]:
        config = sending_config(request, session)
        # Without an enabled server direct_sender answers 503 (not the caller's fault).
        if config.smtp and messenger not in messengers(config.smtp):
            offered = ", ".join(messengers(config.smtp))
            raise bad_request(
                f"messenger: unknown messenger {messenger[:50]!r} (enabled: {offered})"
            )
        from_email = str(body.get("from_email") or config.from_email)
        if config.smtp and "{{" not in from_email:
            try:
                servers_for(config.smtp, messenger, from_email)
            except InvalidInput as exc:
                raise bad_request(str(exc)) from None
        content = tx_content(
            session,
            template_id,
            content_type=str(body.get("content_type") or "html"),
            from_email=str(body.get("from_email") or ""),
            subject=str(body.get("subject") or ""),
            headers=body.get("headers"),
            altbody=altbody or None,
            config=config,
        )
        targets = tx_targets(session, mode, emails=emails, ids=ids)
        sender = direct_sender(request, config, messenger)
        results = sender.send(
            session, content, targets, kind="tx", tx_data=tx_data, attachments=attachments
        )
        return [r.as_dict() for r in results]

    return listmonk_answer(request, await run_db(request, work, write=True))


async def _tx_request(request: Request) -> tuple[dict[str, Any], list[Attachment]]:
    """The message's fields and its attachments: a JSON body, or (as listmonk takes files)
    multipart/form-data with the fields as JSON in `data` and any number of `file` parts."""
    content_type = request.headers.get("content-type", "").lower()
    # /api/tx is a form route (web.body.FORM_ROUTES): the browser cross-site check has run.
    if not content_type.startswith("multipart/form-data"):
        if not is_json_media_type(content_type):
            raise ApiError(415, "body: JSON (application/json) or multipart/form-data")
        return await json_object(request), []
    async with request.form(max_files=MAX_ATTACHMENTS, max_fields=5) as form:
        fields = form.get("data")
        if not isinstance(fields, str):
            raise bad_request("data: required (the message's fields as a JSON string)")
        try:
            body = orjson.loads(fields)
        except orjson.JSONDecodeError:
            raise bad_request("data: not valid JSON") from None
        if not isinstance(body, dict):
            raise bad_request("data: must be a JSON object")
        if too_deep(body):
            raise bad_request(f"data: nests deeper than {MAX_JSON_DEPTH} levels")
        attachments: list[Attachment] = []
        total = 0
        for upload in form.getlist("file"):
            if not isinstance(upload, UploadFile):
                raise bad_request("file: expected a file")
            content = await upload.read(MAX_ATTACHMENT_BYTES + 1)
            total += len(content)
            if len(content) > MAX_ATTACHMENT_BYTES or total > MAX_ATTACHMENT_BYTES:
                raise ApiError(413, f"file: attachments over {MAX_ATTACHMENT_BYTES} bytes in all")
            attachments.append(
                Attachment(
                    attachment_filename(upload.filename or ""),
                    attachment_type(upload.filename or "", upload.content_type or ""),
                    content,
                )
            )
    return body, attachments


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
        content = compile_content(
            subject=str(body.get("subject") or ""),
            body=text,
            content_type=content_type,
            from_email=str(body.get("from_email") or config.from_email),
            altbody=body.get("altbody") if isinstance(body.get("altbody"), str) else None,
            headers=custom_headers(body.get("headers")),
        )
        targets = raw_targets(addresses)
        sender = direct_sender(request, config)
        results = sender.send(session, content, targets, kind="raw", tx_data=body.get("data") or {})
        return [r.as_dict() for r in results]

    return per_recipient(await run_db(request, work, write=True))
