"""Mailjet Event API webhooks: one event, or an array of events when grouping is on.

Settings (`bounce.mailjet`): `username` and `password`, the Basic credentials put in the
event callback URL at Mailjet.
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
    check_basic_auth,
    email_of,
    load_json,
    make_event,
    text,
    timestamp,
)

NAME = "mailjet"

# Mailjet's `event` values; "bounce" is refined by its `hard_bounce` flag.
EVENT_TYPES: dict[str, EventType | None] = {
    "bounce": "soft",
    "blocked": "soft",
    "spam": "complaint",
    "sent": None,
    "open": None,
    "click": None,
    "unsub": None,
}


class MailjetProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.mailjet",
        {"enabled": False, "username": "", "password": ""},
        secret_fields=("password",),
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        check_basic_auth(
            request, str(config.get("username") or ""), str(config.get("password") or "")
        )

    def parse(self, body: bytes) -> list[Event]:
        events: list[Event] = []
        for item in as_list(load_json(body)):
            name = text(item.get("event"), 32)
            type_ = EVENT_TYPES.get(name)
            if name == "bounce" and item.get("hard_bounce") is True:
                type_ = "hard"
            email = email_of(item.get("email"))
            if type_ is None or not email:
                continue
            campaign, subscriber = attribution(
                {"stmails_campaign": item.get("customcampaign")},
                item.get("Payload"),
                item.get("CustomID"),
            )
            detail = " ".join(
                part
                for part in (text(item.get("error_related_to"), 64), text(item.get("error"), 200))
                if part
            )
            diagnostic = text(item.get("comment")) or detail
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=":".join(
                        (name, text(item.get("MessageID"), 40), email, text(item.get("time"), 20))
                    ),
                    diagnostic=diagnostic,
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type=(text(item.get("source"), 64) or "abuse")
                    if type_ == "complaint"
                    else "",
                    occurred_at=timestamp(item.get("time")),
                    meta={"error": detail, "mj_campaign_id": text(item.get("mj_campaign_id"), 40)},
                )
            )
        return events
