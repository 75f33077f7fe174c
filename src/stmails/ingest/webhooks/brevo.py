"""Brevo (ex-Sendinblue) transactional and marketing webhooks: one JSON event per request.

Settings (`bounce.brevo`): `username`/`password` (Basic credentials in the webhook URL) or
`token` (the bearer token set as the webhook's authentication).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    Provider,
    ProviderSettings,
    WebhookRequest,
    as_list,
    attribution,
    check_bearer_or_basic,
    email_of,
    load_json,
    make_event,
    text,
    timestamp,
)

NAME = "brevo"

# Brevo names its events in snake case in webhook payloads and in camel case in its webhook
# settings; both spellings are accepted.
EVENT_TYPES: dict[str, EventType | None] = {
    "hard_bounce": "hard",
    "hardBounce": "hard",
    "invalid_email": "hard",
    "soft_bounce": "soft",
    "softBounce": "soft",
    "blocked": "soft",
    "spam": "complaint",
    "complaint": "complaint",
    "deferred": None,
    "request": None,
    "sent": None,
    "delivered": None,
    "opened": None,
    "unique_opened": None,
    "click": None,
    "unsubscribed": None,
    "error": None,
    "proxy_open": None,
}


class BrevoProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.brevo",
        {"enabled": False, "username": "", "password": "", "token": ""},
        secret_fields=("password", "token"),
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        check_bearer_or_basic(request, config)

    def parse(self, body: bytes) -> list[Event]:
        events: list[Event] = []
        for item in as_list(load_json(body)):
            name = text(item.get("event"), 32)
            type_ = EVENT_TYPES.get(name)
            email = email_of(item.get("email"))
            if type_ is None or not email:
                continue
            message_id = text(item.get("message-id") or item.get("camp_id"), 200)
            when = item.get("ts_event") or item.get("ts_epoch") or item.get("date_event")
            campaign, subscriber = attribution(item.get("X-Mailin-custom"), item.get("headers"))
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    # Brevo's `id` identifies the webhook, not the event.
                    event_id=f"{name}:{message_id}:{email}:{text(when, 20)}",
                    diagnostic=text(item.get("reason")),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type="abuse" if type_ == "complaint" else "",
                    occurred_at=timestamp(when),
                    meta={"event": name, "message_id": message_id},
                )
            )
        return events
