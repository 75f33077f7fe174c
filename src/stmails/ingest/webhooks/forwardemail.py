"""Forward Email bounce webhooks: one JSON object per request, signed with HMAC-SHA256.

Settings (`bounce.forwardemail`): `key`, the webhook signature key; the hex HMAC-SHA256 of
the raw body comes in the X-Webhook-Signature header.
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
    required,
    secret_equals,
    text,
    timestamp,
)

NAME = "forwardemail"
SIGNATURE_HEADER = "x-webhook-signature"

# Forward Email's bounce categories: only "recipient" says the address is bad; blocks, spam
# and virus verdicts, capacity and network trouble are about the message or the sender.
EVENT_TYPES: dict[str, EventType | None] = {
    "recipient": "hard",
    "block": "soft",
    "blocklist": "soft",
    "spam": "soft",
    "virus": "soft",
    "capacity": "soft",
    "network": "soft",
    "protocol": "soft",
    "dmarc": "soft",
    "policy": "soft",
    "envelope": "soft",
    "message": "soft",
    "other": "soft",
}


class ForwardEmailProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.forwardemail", {"enabled": False, "key": ""}, secret_fields=("key",)
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        key = required(config, "key", "forwardemail webhook key")
        expected = hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
        if not secret_equals(request.header(SIGNATURE_HEADER).lower(), expected):
            raise SignatureError()

    def parse(self, body: bytes) -> list[Event]:
        notice = load_json(body)
        if not isinstance(notice, Mapping):
            raise PayloadError("Forward Email notice is not a JSON object")
        bounce = notice.get("bounce")
        bounce = bounce if isinstance(bounce, Mapping) else {}
        email = email_of(notice.get("recipient"))
        category = text(bounce.get("category"), 32).lower()
        type_ = EVENT_TYPES.get(category, "soft")
        if not email or type_ is None:
            return []
        campaign, subscriber = attribution(notice.get("headers"))
        code = bounce.get("code") or notice.get("response_code")
        return [
            make_event(
                NAME,
                type_,
                email=email,
                event_id=f"{text(notice.get('email_id'), 100)}:{email}",
                diagnostic=text(notice.get("response")) or text(bounce.get("message")),
                status=text(bounce.get("status"), 16)
                if isinstance(bounce.get("status"), str)
                else "",
                replycode=text(code, 3) if isinstance(code, int) else "",
                campaign=campaign,
                subscriber=subscriber,
                occurred_at=timestamp(notice.get("bounced_at")),
                meta={"category": category, "feedback_id": text(notice.get("feedback_id"), 200)},
            )
        ]
