"""Lettermint webhooks: `X-Lettermint-Signature: t=<time>,v1=<hex HMAC-SHA256 of "<time>.<body>">`
(the format listmonk verifies), with listmonk's `X-Listmonk-*` metadata for attribution."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.lettermint import LettermintProvider

from .contract import Case, WebhookContract, sample

KEY = "lm-webhook-secret"
NOW = 1_780_000_000
CONFIG = {"key": KEY}


def _header(key: str, stamp: int, body: bytes) -> str:
    digest = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def sign(body: bytes, *, stamp: int = NOW) -> WebhookRequest:
    return WebhookRequest(body=body, headers={"x-lettermint-signature": _header(KEY, stamp, body)})


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        body=body, headers={"x-lettermint-signature": _header("other", NOW, body)}
    )


def provider() -> LettermintProvider:
    return LettermintProvider(clock=lambda: float(NOW + 30))


class TestLettermintContract(WebhookContract):
    case = Case(
        provider=provider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="lettermint_hard_bounce.json",
        expected=[("missing@example.net", "hard")],
        unknown_event={"id": "x", "event": "message.opened", "data": {"recipient": "a@b.example"}},
    )


def test_codes_and_reason_come_from_the_response() -> None:
    (event,) = provider().handle(sign(sample("lettermint_hard_bounce.json")), CONFIG).events
    assert (event.status, event.replycode, event.reason) == ("5.1.1", "550", "userunknown")
    assert event.source == "lettermint"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("message.soft_bounced", "soft"), ("message.spam_complaint", "complaint")],
)
def test_soft_bounces_and_complaints(kind: str, expected: str) -> None:
    notice = json.loads(sample("lettermint_hard_bounce.json"))
    notice["event"] = kind
    (event,) = provider().handle(sign(json.dumps(notice).encode()), CONFIG).events
    assert event.type == expected


def test_an_old_signature_is_refused_as_a_replay() -> None:
    body = sample("lettermint_hard_bounce.json")
    with pytest.raises(SignatureError):
        provider().handle(sign(body, stamp=NOW - 600), CONFIG)
    # The time is part of what is signed: a fresh time on an old signature does not pass.
    old = _header(KEY, NOW - 600, body).split(",v1=")[1]
    moved = WebhookRequest(body=body, headers={"x-lettermint-signature": f"t={NOW},v1={old}"})
    with pytest.raises(SignatureError):
        provider().handle(moved, CONFIG)


def test_a_malformed_signature_header_is_refused() -> None:
    body = sample("lettermint_hard_bounce.json")
    for header in ("", "v1=abc", f"t={NOW}", "t=soon,v1=00", f"t={NOW},v1=zz"):
        with pytest.raises(SignatureError):
            provider().handle(
                WebhookRequest(body=body, headers={"x-lettermint-signature": header}), CONFIG
            )
