"""Mailjet event callbacks behind Basic auth."""

from __future__ import annotations

import json

from stmails.ingest.webhooks import WebhookRequest
from stmails.ingest.webhooks.mailjet import MailjetProvider

from .contract import Case, WebhookContract, sample
from .signing import basic

CONFIG = {"username": "mj", "password": "mj-pass"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers=basic("mj", "mj-pass"))


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers=basic("mj", "mj-pas"))


class TestMailjetContract(WebhookContract):
    case = Case(
        provider=MailjetProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="mailjet_events.json",
        expected=[("bounce@mailjet.com", "hard"), ("spam@mailjet.com", "complaint")],
        unknown_event={"event": "sent", "email": "a@b.c", "MessageID": 1},
        signs_body=False,
    )


def test_a_single_ungrouped_soft_bounce() -> None:
    item = json.loads(sample("mailjet_events.json"))[0] | {"hard_bounce": False}
    (event,) = MailjetProvider().handle(sign(json.dumps(item).encode()), CONFIG).events
    assert event.type == "soft" and event.reason == "hostunknown"
