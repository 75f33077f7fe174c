"""SendGrid signed Event Webhook."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.sendgrid import SendGridProvider

from .contract import Case, WebhookContract, sample
from .signing import sendgrid_headers, sendgrid_keys

KEY, PUBLIC = sendgrid_keys()
CONFIG = {"key": PUBLIC}


def sign(body: bytes, stamp: int | None = None) -> WebhookRequest:
    stamp = int(time.time()) if stamp is None else stamp
    return WebhookRequest(body=body, headers=sendgrid_headers(body, stamp, KEY))


def forge(body: bytes) -> WebhookRequest:
    other = ec.generate_private_key(ec.SECP256R1())
    return WebhookRequest(body=body, headers=sendgrid_headers(body, int(time.time()), other))


class TestSendGridContract(WebhookContract):
    case = Case(
        provider=SendGridProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="sendgrid_events.json",
        expected=[
            ("nobody@example.com", "hard"),
            ("blocked@example.com", "soft"),
            ("dropped@example.com", "hard"),
            ("complainer@example.com", "complaint"),
        ],
        unknown_event=[{"email": "a@example.com", "event": "machine_opened", "sg_event_id": "x"}],
    )


def test_reasons_and_codes_come_from_the_diagnostic() -> None:
    events = SendGridProvider().handle(sign(sample("sendgrid_events.json")), CONFIG).events
    assert (events[0].reason, events[0].status, events[0].replycode) == (
        "userunknown",
        "5.1.1",
        "550",
    )
    assert events[1].reason in {"blocked", "badreputation", "spamdetected"}
    assert events[3].feedback_type == "abuse"
    assert events[0].event_id == "6g4ZI7SA-xmRDv57GoPIPw=="


@pytest.mark.parametrize(
    ("classification", "expected"),
    [
        ("Invalid Address", "hard"),
        ("Mailbox Unavailable", "hard"),
        ("Technical", "soft"),
        ("Content", "soft"),
        ("Reputation", "soft"),
        ("Frequency or Volume", "soft"),
        ("Unclassified", "soft"),
    ],
)
def test_bounce_classification_phrases_decide_hard_or_soft(
    classification: str, expected: str
) -> None:
    body = json.dumps(
        [
            {
                "email": "x@example.com",
                "event": "bounce",
                "type": "bounce",
                "sg_event_id": "e1",
                "bounce_classification": classification,
            }
        ]
    ).encode()
    assert [e.type for e in SendGridProvider().handle(sign(body), CONFIG).events] == [expected]


def test_stale_timestamps_are_refused() -> None:
    body = sample("sendgrid_events.json")
    with pytest.raises(SignatureError):
        SendGridProvider().handle(sign(body, stamp=int(time.time()) - 3600), CONFIG)


def test_the_key_may_be_given_as_pem() -> None:
    pem = (
        KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    events = SendGridProvider().handle(sign(sample("sendgrid_events.json")), {"key": pem}).events
    assert len(events) == 4
