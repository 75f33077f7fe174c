"""Resend webhooks (email.bounced, email.complained), signed the Svix way.

Settings (`bounce.resend`): `signing_key`, the signing secret `whsec_<base64>`; `tolerance_seconds`
(default 300). The signature header holds space-separated `v1,<base64 HMAC-SHA256>` entries
over `<svix-id>.<svix-timestamp>.<body>`; any one matching entry is enough (key rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    NotConfigured,
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

NAME = "resend"
DEFAULT_TOLERANCE = 300

EVENT_TYPES: dict[str, EventType | None] = {
    "email.bounced": "hard",
    "email.complained": "complaint",
    "email.sent": None,
    "email.delivered": None,
    "email.delivery_delayed": None,
    "email.opened": None,
    "email.clicked": None,
    "email.failed": None,
    "email.scheduled": None,
}
# Resend reports SES-style bounce types inside `data.bounce.type`.
BOUNCE_TYPES: dict[str, EventType] = {
    "Permanent": "hard",
    "Transient": "soft",
    "Undetermined": "soft",
}


def svix_key(secret: str) -> bytes:
    """The raw HMAC key of a `whsec_...` secret."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotConfigured("resend signing secret is not whsec_<base64>") from exc


def svix_signature(key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    """The base64 Svix v1 signature of one message."""
    signed = f"{msg_id}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class ResendProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.resend", {"enabled": False, "signing_key": ""}, secret_fields=("signing_key",)
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        secret = required(config, "signing_key", "resend signing secret")
        key = svix_key(secret)
        msg_id = request.header("svix-id")
        stamp = request.header("svix-timestamp")
        require_fresh(stamp, self.clock(), config, DEFAULT_TOLERANCE)
        if not msg_id:
            raise SignatureError()
        expected = svix_signature(key, msg_id, stamp, request.body)
        offered = [
            entry.partition(",")[2]
            for entry in request.header("svix-signature").split()[:10]
            if entry.startswith("v1,")
        ]
        # Every entry is compared, so that the time taken does not depend on which one matched.
        matches = [secret_equals(candidate, expected) for candidate in offered]
        if not any(matches):
            raise SignatureError()

    def parse(self, body: bytes) -> list[Event]:
        document = load_json(body)
        if not isinstance(document, Mapping):
            raise PayloadError("Resend event is not a JSON object")
        name = text(document.get("type"), 64)
        type_ = EVENT_TYPES.get(name)
        data = document.get("data")
        if type_ is None or not isinstance(data, Mapping):
            return []
        bounce = data.get("bounce")
        bounce = bounce if isinstance(bounce, Mapping) else {}
        if name == "email.bounced":
            type_ = BOUNCE_TYPES.get(text(bounce.get("type"), 32), "hard")
        recipients = data.get("to")
        recipients = recipients if isinstance(recipients, list) else [recipients]
        campaign, subscriber = attribution(data.get("tags"), data.get("headers"))
        email_id = text(data.get("email_id"), 100)
        events: list[Event] = []
        for recipient in recipients[:100]:
            email = email_of(recipient)
            if not email:
                continue
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=f"{name}:{email_id}:{email}",
                    diagnostic=text(bounce.get("message")),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type="abuse" if type_ == "complaint" else "",
                    occurred_at=timestamp(document.get("created_at")),
                    meta={"email_id": email_id, "bounce_sub_type": text(bounce.get("subType"), 64)},
                )
            )
        return events
