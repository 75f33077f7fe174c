"""Azure Communication Services delivery reports through Event Grid."""

from __future__ import annotations

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.azure import AzureProvider

from .contract import Case, WebhookContract, sample

CONFIG = {"key": "grid-secret"}


def sign(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, query={"key": "grid-secret"})


def forge(body: bytes) -> WebhookRequest:
    return WebhookRequest(body=body, query={"key": "grid-secre"})


class TestAzureContract(WebhookContract):
    case = Case(
        provider=AzureProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="azure_delivery_report.json",
        expected=[("receiver@azure.com", "hard")],
        unknown_event=[{"id": "1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}}],
        signs_body=False,
        attributed=False,
    )


def test_the_validation_handshake_is_answered_after_the_secret_check() -> None:
    body = sample("azure_validation.json")
    result = AzureProvider().handle(sign(body), CONFIG)
    assert result.reply == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    with pytest.raises(SignatureError):
        AzureProvider().handle(forge(body), CONFIG)


def test_cloudevents_options_handshake() -> None:
    request = WebhookRequest(
        body=b"",
        method="OPTIONS",
        headers={
            "authorization": "Bearer grid-secret",
            "webhook-request-origin": "eventgrid.azure.net",
        },
    )
    result = AzureProvider().handle(request, CONFIG)
    assert result.headers == {"WebHook-Allowed-Origin": "eventgrid.azure.net"}


def test_reason_from_the_status_message() -> None:
    (event,) = AzureProvider().handle(sign(sample("azure_delivery_report.json")), CONFIG).events
    assert (
        event.reason == "userunknown" and event.event_id == "00000000-0000-0000-0000-000000000000"
    )


# listmonk's Azure settings: `shared_secret` as `?code=` or in a header (named by
# `shared_secret_header`, default X-Listmonk-Webhook-Secret).
LISTMONK = {"shared_secret": "lm-grid-secret", "shared_secret_header": ""}


def test_listmonk_shared_secret_in_the_code_parameter() -> None:
    body = sample("azure_delivery_report.json")
    ok = AzureProvider().handle(
        WebhookRequest(body=body, query={"code": "lm-grid-secret"}), LISTMONK
    )
    assert [e.email for e in ok.events] == ["receiver@azure.com"]
    with pytest.raises(SignatureError):
        AzureProvider().handle(WebhookRequest(body=body, query={"code": "lm-grid-secre"}), LISTMONK)


def test_listmonk_shared_secret_in_the_default_or_a_named_header() -> None:
    body = sample("azure_delivery_report.json")
    default = WebhookRequest(body=body, headers={"x-listmonk-webhook-secret": "lm-grid-secret"})
    assert AzureProvider().handle(default, LISTMONK).events
    named = {**LISTMONK, "shared_secret_header": "X-Grid-Secret"}
    custom = WebhookRequest(body=body, headers={"x-grid-secret": "lm-grid-secret"})
    assert AzureProvider().handle(custom, named).events
    # Once a header is named, the default one no longer opens the endpoint.
    with pytest.raises(SignatureError):
        AzureProvider().handle(default, named)
    # stmails' own `?key=` does not open a listmonk-configured endpoint with the other secret.
    with pytest.raises(SignatureError):
        AzureProvider().handle(WebhookRequest(body=body, query={"key": "lm-grid-secret"}), LISTMONK)
