"""SparkPost event webhooks: batches of `{"msys": {"message_event": {...}}}` objects.

Settings (`bounce.sparkpost`): `username`/`password` for Basic auth, or `token` for an
`Authorization: Bearer` token (SparkPost's OAuth 2.0 webhook authentication).
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

NAME = "sparkpost"

# SparkPost message events; bounces are refined by their numeric `bounce_class`.
EVENT_TYPES: dict[str, EventType | None] = {
    "bounce": "soft",
    "out_of_band": "soft",
    "spam_complaint": "complaint",
    "policy_rejection": None,
    "generation_failure": None,
    "generation_rejection": None,
    "delay": None,
    "delivery": None,
    "injection": None,
    "open": None,
    "click": None,
}

# SparkPost bounce classes: 10 and 30 are bad addresses; 60/80/90/100 are auto-replies,
# (un)subscribe requests and challenge-responses, not failures; everything else is soft.
HARD_CLASSES = frozenset({"10", "30"})
NOT_BOUNCES = frozenset({"60", "80", "90", "100"})


class SparkPostProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.sparkpost",
        {"enabled": False, "username": "", "password": "", "token": ""},
        secret_fields=("password", "token"),
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        check_bearer_or_basic(request, config)

    def parse(self, body: bytes) -> list[Event]:
        events: list[Event] = []
        for wrapper in as_list(load_json(body)):
            msys = wrapper.get("msys")
            event = msys.get("message_event") if isinstance(msys, Mapping) else None
            if not isinstance(event, Mapping):
                continue
            name = text(event.get("type"), 32)
            type_ = EVENT_TYPES.get(name)
            bounce_class = text(event.get("bounce_class"), 8)
            if name in ("bounce", "out_of_band"):
                if bounce_class in NOT_BOUNCES:
                    continue
                type_ = "hard" if bounce_class in HARD_CLASSES else "soft"
            email = email_of(event.get("rcpt_to") or event.get("raw_rcpt_to"))
            if type_ is None or not email:
                continue
            campaign, subscriber = attribution(event.get("rcpt_meta"), event.get("tags"))
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=text(event.get("event_id"), 200),
                    diagnostic=text(event.get("raw_reason") or event.get("reason")),
                    replycode=text(event.get("error_code"), 3),
                    campaign=campaign,
                    subscriber=subscriber,
                    feedback_type=text(event.get("fbtype"), 64) if type_ == "complaint" else "",
                    occurred_at=timestamp(event.get("timestamp")),
                    meta={
                        "bounce_class": bounce_class,
                        "campaign_id": text(event.get("campaign_id"), 200),
                    },
                )
            )
        return events
