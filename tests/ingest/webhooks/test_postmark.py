"""Postmark bounce, spam-complaint and subscription-change webhooks behind Basic auth."""

from __future__ import annotations

import json

from stmails.ingest.webhooks import WebhookRequest
from stmails.ingest.webhooks.postmark import PostmarkProvider

from .contract import Case, WebhookContract, sample
from .signing import basic

CONFIG = {"username": "postmark", "password": "s3cret-pass"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers=basic("postmark", "s3cret-pass"))


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers=basic("postmark", "guess"))


class TestPostmarkContract(WebhookContract):
    case = Case(
        provider=PostmarkProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="postmark_bounce.json",
        expected=[("john@example.com", "hard")],
        unknown_event={"RecordType": "Bounce", "Type": "AutoResponder", "ID": 1, "Email": "a@b.c"},
        signs_body=False,
    )


def test_bounce_details_and_ids() -> None:
    (event,) = PostmarkProvider().handle(sign(sample("postmark_bounce.json")), CONFIG).events
    assert event.reason == "userunknown" and event.status == "5.1.1"
    assert event.event_id == "Bounce:4323372036854775807"


def test_spam_complaints_are_complaints() -> None:
    (event,) = (
        PostmarkProvider().handle(sign(sample("postmark_spam_complaint.json")), CONFIG).events
    )
    assert (event.type, event.reason, event.feedback_type) == ("complaint", "feedback", "abuse")


def test_subscription_changes_suppressing_for_a_hard_bounce_count_once() -> None:
    body = sample("postmark_subscription_change.json")
    (event,) = PostmarkProvider().handle(sign(body), CONFIG).events
    assert (event.email, event.type) == ("bounced-address@wildbit.com", "hard")
    manual = json.loads(body) | {"SuppressionReason": "ManualSuppression"}
    assert PostmarkProvider().handle(sign(json.dumps(manual).encode()), CONFIG).events == []
    reactivated = json.loads(body) | {"SuppressSending": False}
    assert PostmarkProvider().handle(sign(json.dumps(reactivated).encode()), CONFIG).events == []
