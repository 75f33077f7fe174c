"""Issue 11: an SNS message's signed Timestamp must be recent (a captured message cannot be
replayed later), and a certificate that could not be fetched is not fetched again for a while
(a stream of messages naming it costs one fetch, not one each)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.ses import CERT_RETRY_SECONDS, SesProvider

from .contract import sample
from .signing import CERT_URL, TOPIC_ARN, sns_message, sns_signer

NOTIFICATION = json.loads(sample("ses_bounce_notification.json"))
TRUSTED = {"topic_arns": [TOPIC_ARN], "signing_cert_pem": sns_signer().cert_pem}


def request(message: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(body=json.dumps(message).encode())


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("hours", [-2, 2, -24 * 30])
def test_a_message_signed_long_ago_or_ahead_is_refused(hours: int) -> None:
    sent_at = datetime.now(UTC) + timedelta(hours=hours)
    message = sns_message(NOTIFICATION, sent_at=sent_at)
    with pytest.raises(SignatureError):
        SesProvider().handle(request(message), TRUSTED)


def test_recent_messages_pass_and_the_tolerance_is_a_setting() -> None:
    message = sns_message(NOTIFICATION, sent_at=datetime.now(UTC) - timedelta(minutes=30))
    assert SesProvider().handle(request(message), TRUSTED).events
    old = sns_message(NOTIFICATION, sent_at=datetime.now(UTC) - timedelta(hours=5))
    assert SesProvider().handle(request(old), {**TRUSTED, "tolerance_seconds": 6 * 3600}).events
    for broken in ("", "yesterday", None):
        message = sns_message(NOTIFICATION)
        message["Timestamp"] = broken
        with pytest.raises(SignatureError):
            SesProvider().handle(request(message), TRUSTED)


class FlakySnsHttp:
    def __init__(self) -> None:
        self.visited: list[str] = []
        self.down = True

    def get(self, url: str) -> bytes:
        self.visited.append(url)
        if self.down:
            raise OSError("connection refused")
        return sns_signer().cert_pem.encode()


def test_a_failed_certificate_fetch_is_not_repeated_for_a_while() -> None:
    http, clock = FlakySnsHttp(), Clock()
    provider = SesProvider(http=http, clock=clock)
    config = {"topic_arns": [TOPIC_ARN]}
    for _ in range(5):
        with pytest.raises(OSError):
            provider.handle(request(sns_message(NOTIFICATION)), config)
    assert http.visited == [CERT_URL]
    # Once the pause is over, it is tried again; the answer is then cached for good.
    http.down = False
    clock.now += CERT_RETRY_SECONDS + 1
    for _ in range(3):
        assert provider.handle(request(sns_message(NOTIFICATION)), config).events
    assert http.visited == [CERT_URL, CERT_URL]
