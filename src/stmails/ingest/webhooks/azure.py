"""Azure Communication Services email delivery reports, delivered by Azure Event Grid.

Settings (`bounce.azure`): `key`, a shared secret given in the subscription's endpoint URL
as `?key=...` or as an `Authorization: Bearer` delivery property; or, as listmonk configures
it, `shared_secret`, given as `?code=...` or in the header named by `shared_secret_header`
(default `X-Listmonk-Webhook-Secret`, an Event Grid delivery property). Either secret opens
the endpoint. Event Grid's validation handshake (a SubscriptionValidationEvent, or the
CloudEvents OPTIONS request) is answered only when a secret matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    Provider,
    ProviderSettings,
    SignatureError,
    WebhookRequest,
    WebhookResult,
    as_list,
    email_of,
    load_json,
    make_event,
    required,
    secret_equals,
    text,
    timestamp,
)

NAME = "azure"
LISTMONK_SECRET_HEADER = "X-Listmonk-Webhook-Secret"
DELIVERY_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

EVENT_TYPES: dict[str, EventType | None] = {
    DELIVERY_REPORT: "hard",
    "Microsoft.Communication.EmailEngagementTrackingReportReceived": None,
}
# The `status` of a delivery report; anything but a bounce or failure is not counted
# (Suppressed: ACS did not send because the address is already on its suppression list).
STATUSES: dict[str, EventType | None] = {
    "Bounced": "hard",
    "Failed": "soft",
    "FilteredSpam": None,
    "Quarantined": None,
    "Suppressed": None,
    "Delivered": None,
    "Expanded": None,
}


class AzureProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.azure",
        {"enabled": False, "key": "", "shared_secret": "", "shared_secret_header": ""},
        secret_fields=("key", "shared_secret"),
    )

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        key = str(config.get("key") or "")
        shared = str(config.get("shared_secret") or "")
        if not key and not shared:
            required(config, "key", "azure shared secret (key or shared_secret)")
        if key:
            header = request.header("authorization")
            given = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if secret_equals(given or request.query.get("key", ""), key):
                return
        if shared:
            name = str(config.get("shared_secret_header") or "") or LISTMONK_SECRET_HEADER
            for given in (request.query.get("code", ""), request.header(name.lower()).strip()):
                if given and secret_equals(given, shared):
                    return
        raise SignatureError()

    def handle(self, request: WebhookRequest, config: Mapping[str, Any]) -> WebhookResult:
        self.verify(request, config)
        if request.method == "OPTIONS":
            # CloudEvents 1.0 abuse-protection handshake.
            origin = request.header("webhook-request-origin")
            return WebhookResult(headers={"WebHook-Allowed-Origin": origin[:200] or "*"})
        for item in as_list(load_json(request.body)):
            if _type_of(item) == VALIDATION:
                data = item.get("data")
                code = text(data.get("validationCode"), 200) if isinstance(data, Mapping) else ""
                return WebhookResult(reply={"validationResponse": code})
        return WebhookResult(events=self.parse(request.body))

    def parse(self, body: bytes) -> list[Event]:
        events: list[Event] = []
        for item in as_list(load_json(body)):
            data = item.get("data")
            if _type_of(item) != DELIVERY_REPORT or not isinstance(data, Mapping):
                continue
            status = text(data.get("status"), 32)
            type_ = STATUSES.get(status)
            email = email_of(data.get("recipient"))
            if type_ is None or not email:
                continue
            details = data.get("deliveryStatusDetails")
            details = details if isinstance(details, Mapping) else {}
            events.append(
                make_event(
                    NAME,
                    type_,
                    email=email,
                    event_id=text(item.get("id"), 200),
                    diagnostic=text(details.get("statusMessage")),
                    occurred_at=timestamp(
                        data.get("deliveryAttemptTimeStamp")
                        or item.get("eventTime")
                        or item.get("time")
                    ),
                    meta={
                        "status": status,
                        "message_id": text(data.get("messageId"), 200),
                        "internet_message_id": text(data.get("internetMessageId"), 300),
                    },
                )
            )
        return events


def _type_of(item: Mapping[str, Any]) -> str:
    # Event Grid schema uses `eventType`; the CloudEvents schema uses `type`.
    return text(item.get("eventType") or item.get("type"), 200)
