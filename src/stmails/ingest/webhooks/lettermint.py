"""Lettermint webhooks: one JSON event per request, signed with HMAC-SHA256.

Settings (`bounce.lettermint`, listmonk's): `enabled` and `key`, the webhook's signing secret.
The `X-Lettermint-Signature` header is `t=<unix time>,v1=<hex HMAC-SHA256>` over
`<unix time>.<raw body>`; the time must be within five minutes (`tolerance_seconds`).
Events `message.hard_bounced`, `message.soft_bounced` and `message.spam_complaint` count; others
(deliveries, `webhook.test`) are acknowledged and ignored. The campaign and subscriber come
from the message's `metadata` (ours, or listmonk's `X-Listmonk-Campaign`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    PayloadError,
    Provider,
    ProviderSettings,
    SignatureError,
    WebhookRequest,
    attribution,
    email_of,
    load_json,
    make_event,
    require_fresh,
    required,
    secret_equals,
    text,
    timestamp,
)

NAME = "lettermint"
SIGNATURE_HEADER = "x-lettermint-signature"
DEFAULT_TOLERANCE = 300

EVENT_TYPES: dict[str, EventType | None] = {
    "message.hard_bounced": "hard",
    "message.soft_bounced": "soft",
    "message.spam_complaint": "complaint",
    "message.delivered": None,
    "message.sent": None,
    "webhook.test": None,
}


def _signature_parts(header: str) -> tuple[str, str]:
    stamp = signature = ""
    for part in header.split(",")[:8]:
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamp = value.strip()
        elif key == "v1":
            signature = value.strip().lower()
    return stamp, signature


class LettermintProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.lettermint", {"enabled": False, "key": ""}, secret_fields=("key",)
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        key = required(config, "key", "lettermint webhook signing secret")
        stamp, signature = _signature_parts(request.header(SIGNATURE_HEADER))
        if not stamp or not signature:
            raise SignatureError()
        require_fresh(stamp, self.clock(), config, DEFAULT_TOLERANCE)
        signed = stamp.encode("ascii") + b"." + request.body
        expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
        if not secret_equals(signature, expected):
            raise SignatureError()

    def parse(self, body: bytes) -> list[Event]:
        notice = load_json(body)
        if not isinstance(notice, Mapping):
            raise PayloadError("Lettermint event is not a JSON object")
        data = notice.get("data")
        if not isinstance(data, Mapping):
            raise PayloadError("Lettermint event has no data object")
        type_ = EVENT_TYPES.get(text(notice.get("event"), 64))
        email = email_of(data.get("recipient"))
        if type_ is None or not email:
            return []
        response = data.get("response")
        response = response if isinstance(response, Mapping) else {}
        code = response.get("status_code")
        campaign, subscriber = attribution(data.get("metadata"))
        return [
            make_event(
                NAME,
                type_,
                email=email,
                event_id=text(notice.get("id"), 200)
                or f"{text(data.get('message_id'), 200)}:{email}:{type_}",
                diagnostic=text(response.get("content")),
                status=text(response.get("enhanced_status_code"), 16),
                replycode=str(code) if isinstance(code, int) and 200 <= code < 600 else "",
                campaign=campaign,
                subscriber=subscriber,
                occurred_at=timestamp(notice.get("timestamp")),
                meta={
                    "message_id": text(data.get("message_id"), 200),
                    "tag": text(data.get("tag"), 100),
                },
            )
        ]
