"""`POST /webhooks/bounce`: listmonk's bounce webhook, recorded through the group-commit writer.

This is the hot path of the server, so it reads the body itself (orjson, no model layer), checks
it with `ingest.native.parse_bounce`, and answers only after the batch holding its event has
committed: `{"data": true, "duplicate": false}` (or `true` when the same event was already
recorded). A body that is not a valid bounce is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stmails.ingest.native import NativeBounceError, parse_bounce
from stmails.services.bounces import RecordResult
from stmails.web.body import non_json_body
from stmails.web.deps import AppState, authenticate
from stmails.web.errors import bad_request, unavailable
from stmails.web.hot_paths import header, json_headers, read_body, send_json
from stmails.web.permissions import check_permission

_STORED = b'{"data":true,"duplicate":false}'
_DUPLICATE = b'{"data":true,"duplicate":true}'
# The answers' heads, as Starlette's Response would make them.
_JSON_HEADERS = {body: json_headers(body) for body in (_STORED, _DUPLICATE)}

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["source", "type"],
    "properties": {
        "subscriber_uuid": {"type": "string", "format": "uuid"},
        "email": {"type": "string", "format": "email"},
        "campaign_uuid": {"type": "string", "format": "uuid"},
        "source": {"type": "string", "example": "api"},
        "type": {"type": "string", "enum": ["hard", "soft", "complaint"]},
        "meta": {
            "oneOf": [{"type": "object"}, {"type": "string"}],
            "description": "an object, or an escaped JSON string as listmonk documents it",
        },
        "reason": {"type": "string", "example": "mailboxfull"},
        "status": {"type": "string", "example": "5.1.1"},
        "diagnostic": {"type": "string"},
        "event_id": {"type": "string", "description": "the provider's id; deduplicates"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


OPENAPI_OPERATION: dict[str, Any] = {
    "tags": ["bounces"],
    "summary": "Record a bounce event (listmonk's bounce webhook)",
    "description": "Answers once the event is committed; a repeat is acknowledged as a duplicate.",
    "operationId": "post_bounce_webhooks_bounce_post",
    "requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}},
    "responses": {
        "200": {
            "description": "recorded (or already recorded)",
            "content": {"application/json": {"example": {"data": True, "duplicate": False}}},
        },
        "400": {"description": "not a valid bounce; the message names the field"},
        "401": {"description": "missing or wrong credentials"},
        "403": {"description": "the caller's role lacks webhooks:post_bounce"},
        "413": {"description": "body over the size cap"},
        "503": {"description": "database unavailable or busy; retry (Retry-After)"},
    },
    "security": [{"basic": []}, {"token": []}],
}


class BounceWebhook:
    """The ASGI endpoint of `POST /webhooks/bounce`.

    A plain ASGI app rather than a FastAPI route: this is the hot path, and it needs none of
    the dependency and validation machinery (nor Starlette's Request and Response objects).
    Errors raised here are answered by the app's exception handlers like any route's.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.stmails
        principal = await authenticate(state, header(scope, b"authorization"), scope.get("client"))
        check_permission(principal, "webhooks:post_bounce")
        content_type = header(scope, b"content-type")
        refusal = non_json_body(
            "POST",
            "/webhooks/bounce",
            content_type.decode("latin-1") if content_type else None,
            True,
        )
        if refusal is not None:
            raise refusal
        body = await read_body(receive)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise bad_request("body: not valid JSON") from None
        try:
            event = parse_bounce(payload)
        except NativeBounceError as exc:
            raise bad_request(str(exc)) from None
        writer = state.writer
        if writer is None:
            raise unavailable("the bounce writer is not running; retry later")
        # A refusal by record() raises RecordError here, answered 400 naming the field.
        result: RecordResult = await writer.submit(event)
        answer = _DUPLICATE if result.duplicate else _STORED
        await send_json(send, answer, _JSON_HEADERS[answer])


route = Route("/webhooks/bounce", BounceWebhook(), methods=["POST"], name="post_bounce")
