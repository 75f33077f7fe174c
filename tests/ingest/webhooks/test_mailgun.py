"""Mailgun webhooks: HMAC over timestamp and token, tokens accepted once."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.mailgun import MailgunProvider

from .contract import Case, WebhookContract, sample
from .signing import mailgun_sign

CONFIG = {"signing_key": "key-mailgun-signing"}


def resign(body: bytes, key: str) -> WebhookRequest:
    try:
        document = json.loads(body)
    except ValueError:
        # Not JSON: sent as is, so that the adapter has to reject it.
        return WebhookRequest(body=body)
    if not isinstance(document, dict):
        document = {"event-data": document}
    return WebhookRequest(body=mailgun_sign(document, key, int(time.time()), uuid.uuid4().hex))


def sign(body: bytes) -> WebhookRequest:
    return resign(body, "key-mailgun-signing")


def forge(body: bytes) -> WebhookRequest:
    return resign(body, "key-guessed")


class TestMailgunContract(WebhookContract):
    case = Case(
        provider=MailgunProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="mailgun_failed.json",
        expected=[("alice@example.com", "hard")],
        unknown_event={"event-data": {"event": "list_member_uploaded", "recipient": "a@b.c"}},
    )


def test_a_replayed_token_is_refused() -> None:
    provider = MailgunProvider()
    request = sign(sample("mailgun_failed.json"))
    assert len(provider.handle(request, CONFIG).events) == 1
    with pytest.raises(SignatureError):
        provider.handle(request, CONFIG)


def test_old_signatures_are_refused() -> None:
    document = json.loads(sample("mailgun_failed.json"))
    old = WebhookRequest(body=mailgun_sign(document, "key-mailgun-signing", 1529006854, "t"))
    with pytest.raises(SignatureError):
        MailgunProvider().handle(old, CONFIG)


def test_temporary_failures_are_soft_and_complaints_complaints() -> None:
    document = json.loads(sample("mailgun_failed.json"))
    document["event-data"]["severity"] = "temporary"
    (event,) = MailgunProvider().handle(sign(json.dumps(document).encode()), CONFIG).events
    assert event.type == "soft" and event.replycode == "550"
    document["event-data"]["event"] = "complained"
    (event,) = MailgunProvider().handle(sign(json.dumps(document).encode()), CONFIG).events
    assert event.type == "complaint"
