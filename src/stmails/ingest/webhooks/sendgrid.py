"""Twilio SendGrid Event Webhook (signed): batches of JSON events.

Settings (`bounce.sendgrid`): `key` is the verification key shown by SendGrid (base64 DER of
the ECDSA P-256 public key, or PEM); `tolerance_seconds` bounds the age of the signed
timestamp (default 600). The signature (header X-Twilio-Email-Event-Webhook-Signature, base64
DER ECDSA over SHA-256) covers the timestamp header followed by the raw body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    NotConfigured,
    Provider,
    ProviderSettings,
    SettingLookup,
    SignatureError,
    WebhookRequest,
    as_list,
    attribution,
    email_of,
    load_json,
    make_event,
    require_fresh,
    required,
    text,
    timestamp,
)

NAME = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
DEFAULT_TOLERANCE = 600

# SendGrid's `event` values. "bounce" and "dropped" are refined below by `type`,
# `bounce_classification` and the drop reason; engagement and delivery events are ignored.
EVENT_TYPES: dict[str, EventType | None] = {
    "bounce": "hard",
    "blocked": "soft",
    "dropped": None,
    "spamreport": "complaint",
    "deferred": None,
    "processed": None,
    "delivered": None,
    "open": None,
    "click": None,
    "unsubscribe": None,
    "group_unsubscribe": None,
    "group_resubscribe": None,
}

# SendGrid's bounce_classification phrases: only a bad address is a hard bounce; blocks for
# reputation, content or volume say nothing about the address.
CLASSIFICATIONS: dict[str, EventType] = {
    "Invalid Address": "hard",
    "Mailbox Unavailable": "hard",
    "Technical": "soft",
    "Content": "soft",
    "Reputation": "soft",
    "Frequency or Volume": "soft",
    "Unclassified": "soft",
}

# Drop reasons that mean the address is known bad or complained; other drops are not bounces.
DROP_REASONS: dict[str, EventType] = {
    "Bounced Address": "hard",
    "Invalid": "hard",
    "Spam Reporting Address": "complaint",
}


def load_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """The verification key from SendGrid's base64 DER form or a PEM block."""
    stripped = key.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(stripped.encode())
        else:
            loaded = serialization.load_der_public_key(base64.b64decode(stripped))
    except (ValueError, binascii.Error) as exc:
        raise NotConfigured("sendgrid verification key is not a valid public key") from exc
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise NotConfigured("sendgrid verification key is not an ECDSA key")
    return loaded


class SendGridProvider(Provider):
    """SendGrid's signed Event Webhook; `clock` is the time seam for the tolerance check."""

    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.sendgrid",
        None,
        # `key` in the object overrides listmonk's flat key: a secret as well.
        secret_fields=("key",),
        enabled_key="bounce.sendgrid_enabled",
        flat_defaults={"bounce.sendgrid_enabled": False, "bounce.sendgrid_key": ""},
        secret_keys=("bounce.sendgrid_key",),
    )

    @classmethod
    def config_from(cls, lookup: SettingLookup) -> dict[str, Any] | None:
        """listmonk's `bounce.sendgrid_key` is the key unless `bounce.sendgrid` gives one."""
        config = super().config_from(lookup)
        if config is not None:
            config.setdefault("key", lookup("bounce.sendgrid_key") or "")
        return config

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        key_text = required(config, "key", "sendgrid verification key")
        key = load_public_key(key_text)
        stamp = request.header(TIMESTAMP_HEADER)
        require_fresh(stamp, self.clock(), config, DEFAULT_TOLERANCE)
        try:
            signature = base64.b64decode(request.header(SIGNATURE_HEADER), validate=True)
            key.verify(signature, stamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise SignatureError() from exc

    def parse(self, body: bytes) -> list[Event]:
        events: list[Event] = []
        for item in as_list(load_json(body)):
            type_ = event_type(item)
            email = email_of(item.get("email"))
            if type_ is None or not email:
                continue
            campaign, subscriber = attribution(item, item.get("unique_args"))
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=text(item.get("sg_event_id"), 200),
                    diagnostic=text(item.get("reason") or item.get("response")),
                    status=text(item.get("status"), 16),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type="abuse" if type_ == "complaint" else "",
                    occurred_at=timestamp(item.get("timestamp")),
                    meta={
                        "event": text(item.get("event"), 32),
                        "bounce_classification": text(item.get("bounce_classification"), 64),
                        "sg_message_id": text(item.get("sg_message_id"), 200),
                    },
                )
            )
        return events


def event_type(item: Mapping[str, Any]) -> EventType | None:
    """Our type for one SendGrid event, or None when it is not a bounce or complaint."""
    name = text(item.get("event"), 32)
    if name == "dropped":
        reason = text(item.get("reason"), 200)
        return next((t for phrase, t in DROP_REASONS.items() if reason.startswith(phrase)), None)
    if name == "bounce":
        classification = text(item.get("bounce_classification"), 64)
        if classification in CLASSIFICATIONS:
            return CLASSIFICATIONS[classification]
        return "soft" if text(item.get("type"), 16) == "blocked" else "hard"
    return EVENT_TYPES.get(name)
