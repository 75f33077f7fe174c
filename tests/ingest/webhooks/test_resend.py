"""Resend webhooks with Svix signatures."""

from __future__ import annotations

import base64
import json
import time

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.resend import ResendProvider

from .contract import Case, WebhookContract, sample
from .signing import svix_headers

SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-key-32-bytes").decode()
CONFIG = {"signing_key": SECRET}


def sign(body: bytes, stamp: int | None = None) -> WebhookRequest:
    stamp = int(time.time()) if stamp is None else stamp
    return WebhookRequest(body=body, headers=svix_headers(SECRET, "msg_2Lh9KRb", stamp, body))


def forge(body: bytes) -> WebhookRequest:
    other = "whsec_" + base64.b64encode(b"another-key").decode()
    return WebhookRequest(
        body=body, headers=svix_headers(other, "msg_2Lh9KRb", int(time.time()), body)
    )


class TestResendContract(WebhookContract):
    case = Case(
        provider=ResendProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="resend_bounced.json",
        expected=[("delivered@resend.dev", "hard")],
        unknown_event={"type": "contact.created", "data": {"email": "a@b.c"}},
    )


def test_rotated_keys_any_matching_signature_is_enough() -> None:
    body = sample("resend_bounced.json")
    request = sign(body)
    headers = dict(request.headers)
    headers["svix-signature"] = "v1,AAAA " + headers["svix-signature"]
    assert (
        len(ResendProvider().handle(WebhookRequest(body=body, headers=headers), CONFIG).events) == 1
    )


def test_stale_signatures_are_refused() -> None:
    with pytest.raises(SignatureError):
        ResendProvider().handle(
            sign(sample("resend_bounced.json"), stamp=int(time.time()) - 3600), CONFIG
        )


def test_complaints() -> None:
    document = json.loads(sample("resend_bounced.json")) | {"type": "email.complained"}
    (event,) = ResendProvider().handle(sign(json.dumps(document).encode()), CONFIG).events
    assert event.type == "complaint"
