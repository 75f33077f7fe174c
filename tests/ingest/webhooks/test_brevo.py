"""Brevo transactional webhooks."""

from __future__ import annotations

from stmails.ingest.webhooks import WebhookRequest
from stmails.ingest.webhooks.brevo import BrevoProvider

from .contract import Case, WebhookContract, sample
from .signing import basic

CONFIG = {"token": "brevo-token"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers={"authorization": "Bearer brevo-token"})


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, headers={"authorization": "Bearer nope"})


class TestBrevoContract(WebhookContract):
    case = Case(
        provider=BrevoProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="brevo_hard_bounce.json",
        expected=[("example@domain.com", "hard")],
        unknown_event={"event": "list_addition", "email": "a@b.c"},
        signs_body=False,
    )


def test_basic_credentials_also_authenticate() -> None:
    config = {"username": "brevo", "password": "pw"}
    request = WebhookRequest(body=sample("brevo_hard_bounce.json"), headers=basic("brevo", "pw"))
    (event,) = BrevoProvider().handle(request, config).events
    assert event.reason == "userunknown"
