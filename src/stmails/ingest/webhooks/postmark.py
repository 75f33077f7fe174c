"""Postmark bounce, spam-complaint and subscription-change webhooks (one record per request).

Settings (`bounce.postmark`): `username` and `password`, the Basic credentials put in the
webhook URL configured at Postmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    PayloadError,
    Provider,
    ProviderSettings,
    WebhookRequest,
    attribution,
    check_basic_auth,
    email_of,
    load_json,
    make_event,
    text,
    timestamp,
)

NAME = "postmark"

# Postmark's bounce `Type` values. Auto-responders, subscribe/unsubscribe requests, challenge
# messages and Postmark's own errors are not bounces of the address.
BOUNCE_TYPES: dict[str, EventType | None] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
    "SpamNotification": "soft",
    "Blocked": "soft",
    "DMARCPolicy": "soft",
    "Unknown": "soft",
    "SpamComplaint": "complaint",
    "ManuallyDeactivated": None,
    "Unsubscribe": None,
    "Subscribe": None,
    "AutoResponder": None,
    "AddressChange": None,
    "OpenRelayTest": None,
    "VirusNotification": None,
    "ChallengeVerification": None,
    "Unconfirmed": None,
    "SMTPApiError": None,
    "InboundError": None,
    "TemplateRenderingFailed": None,
}

# SubscriptionChange records suppress an address for one of these reasons.
SUPPRESSION_REASONS: dict[str, EventType | None] = {
    "HardBounce": "hard",
    "SpamComplaint": "complaint",
    "ManualSuppression": None,
}

RECORD_TYPES: dict[str, EventType | None] = {
    "Bounce": "hard",
    "SpamComplaint": "complaint",
    "SubscriptionChange": "hard",
    "Delivery": None,
    "Open": None,
    "Click": None,
}


class PostmarkProvider(Provider):
    name = NAME
    event_types = RECORD_TYPES
    settings = ProviderSettings(
        "bounce.postmark",
        {"enabled": False, "username": "", "password": ""},
        secret_fields=("password",),
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        check_basic_auth(
            request, str(config.get("username") or ""), str(config.get("password") or "")
        )

    def parse(self, body: bytes) -> list[Event]:
        record = load_json(body)
        if not isinstance(record, Mapping):
            raise PayloadError("Postmark record is not a JSON object")
        kind = text(record.get("RecordType"), 32)
        campaign, subscriber = attribution(record.get("Metadata"))
        if kind in ("Bounce", "SpamComplaint"):
            type_ = BOUNCE_TYPES.get(text(record.get("Type"), 64))
            email = email_of(record.get("Email"))
            if type_ is None or not email:
                return []
            return [
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=f"{kind}:{text(record.get('ID'), 64)}",
                    diagnostic=text(record.get("Details")) or text(record.get("Description")),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type="abuse" if type_ == "complaint" else "",
                    occurred_at=timestamp(record.get("BouncedAt")),
                    meta={"message_id": text(record.get("MessageID"), 100)},
                )
            ]
        if kind == "SubscriptionChange":
            type_ = SUPPRESSION_REASONS.get(text(record.get("SuppressionReason"), 64))
            email = email_of(record.get("Recipient"))
            if record.get("SuppressSending") is not True or type_ is None or not email:
                return []
            return [
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=(
                        f"{kind}:{text(record.get('MessageID'), 64)}:{email}:"
                        f"{text(record.get('ChangedAt'), 40)}"
                    ),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type="abuse" if type_ == "complaint" else "",
                    occurred_at=timestamp(record.get("ChangedAt")),
                    meta={"origin": text(record.get("Origin"), 64)},
                )
            ]
        return []
