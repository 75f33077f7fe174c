"""SparkPost event batches behind Basic auth or a bearer token."""

from __future__ import annotations

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.sparkpost import SparkPostProvider

from .contract import Case, WebhookContract, sample
from .signing import basic

CONFIG = {"username": "sparky", "password": "pw-123", "token": "tok-abc"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers=basic("sparky", "pw-123"))


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers={"authorization": "Bearer tok-guess"})


class TestSparkPostContract(WebhookContract):
    case = Case(
        provider=SparkPostProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="sparkpost_events.json",
        expected=[("recipient@example.com", "hard"), ("complainer@example.com", "complaint")],
        unknown_event=[{"msys": {"message_event": {"type": "amp_open", "rcpt_to": "a@b.c"}}}],
        signs_body=False,
    )


def test_a_bearer_token_authenticates() -> None:
    request = WebhookRequest(
        body=sample("sparkpost_events.json"), headers={"authorization": "Bearer tok-abc"}
    )
    events = SparkPostProvider().handle(request, CONFIG).events
    assert events[0].replycode == "554" and events[1].feedback_type == "abuse"


def test_a_token_is_refused_when_none_is_configured() -> None:
    request = WebhookRequest(body=b"[]", headers={"authorization": "Bearer "})
    with pytest.raises(SignatureError):
        SparkPostProvider().handle(request, {"username": "sparky", "password": "pw-123"})
