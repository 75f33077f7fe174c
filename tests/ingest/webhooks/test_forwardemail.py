"""Forward Email bounce webhooks signed with HMAC-SHA256 of the body."""

from __future__ import annotations

import json

from stmails.core import match_reason
from stmails.ingest.webhooks import WebhookRequest
from stmails.ingest.webhooks.forwardemail import ForwardEmailProvider

from .contract import Case, WebhookContract, sample
from .signing import hmac_hex

CONFIG = {"key": "fe-webhook-key"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        body=body, headers={"x-webhook-signature": hmac_hex("fe-webhook-key", body)}
    )


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers={"x-webhook-signature": hmac_hex("other", body)})


class TestForwardEmailContract(WebhookContract):
    case = Case(
        provider=ForwardEmailProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="forwardemail_bounce.json",
        expected=[("missing@example.net", "hard")],
        unknown_event={"email_id": "1", "recipient": "", "bounce": {"category": "recipient"}},
    )


def test_categories_other_than_recipient_are_soft() -> None:
    notice = json.loads(sample("forwardemail_bounce.json"))
    notice["bounce"] |= {"category": "blocklist", "status": "5.7.1", "code": 554}
    notice["response"] = "554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org"
    (event,) = ForwardEmailProvider().handle(sign(json.dumps(notice).encode()), CONFIG).events
    # The reason is the classifier's verdict on the diagnostic, as for mailbox bounces.
    assert event.type == "soft"
    assert event.reason == match_reason(notice["response"], "5.7.1", "554") != "userunknown"


def test_codes_are_read() -> None:
    (event,) = (
        ForwardEmailProvider().handle(sign(sample("forwardemail_bounce.json")), CONFIG).events
    )
    assert (event.status, event.replycode, event.reason) == ("5.1.1", "550", "userunknown")
