"""`POST /webhooks/bounce`: listmonk's bounce webhook, recorded through the group-commit writer.

This is the hot path of the server, so it reads the body itself (orjson, no model layer), checks
it with `ingest.native.parse_bounce`, and answers only after the batch holding its event has
committed: `{"data": true, "duplicate": false}` (or `true` when the same event was already
recorded). A body that is not a valid bounce is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from stmails.ingest.native import NativeBounceError, parse_bounce
from stmails.web.deps import app_state, require_user
from stmails.web.errors import ApiError, bad_request, unavailable

router = APIRouter(tags=["bounces"])

_STORED = b'{"data":true,"duplicate":false}'
_DUPLICATE = b'{"data":true,"duplicate":true}'

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


def is_duplicate(result: Any) -> bool:
    """Whether services.bounces.record() reported the event as already recorded."""
    if isinstance(result, bool):
        return False
    return bool(getattr(result, "duplicate", False))


@router.post(
    "/webhooks/bounce",
    summary="Record a bounce event (listmonk's bounce webhook)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": REQUEST_SCHEMA}},
        },
        "security": [{"basic": []}, {"token": []}],
    },
)
async def post_bounce(request: Request) -> Response:
    """Records one bounce; 200 only once it is committed (a retry of it is a duplicate)."""
    await require_user(request)
    body = await request.body()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("body: not valid JSON") from None
    try:
        event = parse_bounce(payload)
    except NativeBounceError as exc:
        raise bad_request(str(exc)) from None
    writer = app_state(request).writer
    if writer is None:
        raise unavailable("the bounce writer is not running; retry later")
    try:
        result = await writer.submit(event)
    except ApiError:
        raise
    except ValueError as exc:
        # record() refuses events that cannot be attributed (e.g. an unknown campaign).
        raise bad_request(str(exc)) from None
    return Response(_DUPLICATE if is_duplicate(result) else _STORED, media_type="application/json")
