"""`POST /webhooks/service/{provider}` on the real app and test database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import Bounce, Setting
from stmails.ingest.webhooks import NotConfigured, default_registry
from stmails.ingest.webhooks import settings as webhook_settings
from stmails.ingest.webhooks.ses import SesProvider
from stmails.services import settings as settings_service
from stmails.web.app import create_app

from .contract import sample
from .signing import TOPIC_ARN, basic, mailgun_sign, sns_message, sns_signer

SES_SETTINGS = {
    "bounce.ses_enabled": True,
    "bounce.ses": {"topic_arns": [TOPIC_ARN], "signing_cert_pem": sns_signer().cert_pem},
    "bounce.azure": {"enabled": True, "key": "grid-secret"},
    "bounce.postmark": {"enabled": True, "username": "postmark", "password": "s3cret-pass"},
}


class FakeSnsHttp:
    def __init__(self) -> None:
        self.visited: list[str] = []
        self.down = False

    def get(self, url: str) -> bytes:
        self.visited.append(url)
        if self.down:
            raise OSError("connection refused")
        return b""


@pytest.fixture
def sns_http() -> FakeSnsHttp:
    return FakeSnsHttp()


@pytest.fixture
def client(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str, sns_http: FakeSnsHttp
) -> Iterator[TestClient]:
    with session_maker() as session:
        for key, value in SES_SETTINGS.items():
            settings_service.set_value(session, key, value)
        session.commit()
    app = create_app(Settings(database_url=db_url), engine=engine)
    providers = default_registry()
    providers["ses"] = SesProvider(http=sns_http)
    app.state.stmails.extras["webhook_providers"] = providers
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def stored(session_maker: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with session_maker() as session:
        rows = session.scalars(select(Bounce).order_by(Bounce.id))
        return [(b.email, b.type, b.source) for b in rows]


def post_ses(client: TestClient, inner: Any, **kw: Any) -> Any:
    return client.post("/webhooks/service/ses", content=json.dumps(sns_message(inner, **kw)))


def test_a_signed_notification_is_recorded_once(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    notification = json.loads(sample("ses_bounce_notification.json"))
    first = post_ses(client, notification)
    assert first.status_code == 200
    assert first.json() == {"data": True, "recorded": 2, "duplicates": 0, "rejected": 0}
    again = post_ses(client, notification, message_id="a-retry-has-another-sns-id")
    assert again.json()["duplicates"] == 2
    assert stored(session_maker) == [
        ("jane@example.com", "hard", "ses"),
        ("richard@example.com", "hard", "ses"),
    ]


def test_a_bad_signature_is_a_terse_401_and_records_nothing(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    message = sns_message(json.loads(sample("ses_bounce_notification.json")))
    message["Message"] = message["Message"].replace("jane", "joan")
    response = client.post("/webhooks/service/ses", content=json.dumps(message))
    assert (response.status_code, response.json()) == (401, {"message": "invalid signature"})
    assert stored(session_maker) == []


def test_credentials_in_headers_are_read_from_the_request(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    body = sample("postmark_bounce.json")
    refused = client.post(
        "/webhooks/service/postmark", content=body, headers=basic("postmark", "guess")
    )
    assert refused.status_code == 401 and stored(session_maker) == []
    # Header names arrive in any case; the adapter reads them lower-cased.
    headers = {"AUTHORIZATION": basic("postmark", "s3cret-pass")["authorization"]}
    response = client.post("/webhooks/service/postmark", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": True, "recorded": 1, "duplicates": 0, "rejected": 0}
    assert [source for _, _, source in stored(session_maker)] == ["postmark"]


def test_unknown_and_disabled_providers_are_404(client: TestClient) -> None:
    assert client.post("/webhooks/service/nope", content=b"{}").status_code == 404
    assert client.post("/webhooks/service/mailgun", content=b"{}").status_code == 404


def test_unknown_event_types_are_acknowledged(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    response = post_ses(client, json.loads(sample("ses_delivery_notification.json")))
    assert response.status_code == 200 and response.json() == {"data": True}
    assert stored(session_maker) == []


def test_our_database_failing_is_a_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, session_maker: sessionmaker[Session]
) -> None:
    def database_down(*_: Any, **__: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    # Both recording doors the writer may use (one event, or a batch) find the database down.
    monkeypatch.setattr("stmails.services.bounces.record", database_down)
    monkeypatch.setattr("stmails.services.bounces.record_many", database_down)
    response = post_ses(client, json.loads(sample("ses_bounce_notification.json")))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert stored(session_maker) == []


def test_subscription_is_confirmed_after_the_checks(
    client: TestClient, sns_http: FakeSnsHttp, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        settings_service.set_value(
            session, "bounce.ses", {**SES_SETTINGS["bounce.ses"], "auto_confirm": True}
        )
        session.commit()
    client.app.state.stmails.extras.pop("webhook_settings", None)  # type: ignore[attr-defined]
    confirmation = sns_message("You have chosen to subscribe", kind="SubscriptionConfirmation")
    response = client.post("/webhooks/service/ses", content=json.dumps(confirmation))
    assert response.status_code == 200
    assert sns_http.visited == [confirmation["SubscribeURL"]]


def test_the_azure_validation_handshake_is_answered(client: TestClient) -> None:
    response = client.post(
        "/webhooks/service/azure?key=grid-secret", content=sample("azure_validation.json")
    )
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_the_event_grid_options_handshake_and_the_openapi_document(client: TestClient) -> None:
    response = client.options(
        "/webhooks/service/azure?key=grid-secret",
        headers={"WebHook-Request-Origin": "eventgrid.azure.net"},
    )
    assert response.headers["webhook-allowed-origin"] == "eventgrid.azure.net"
    paths = client.get("/openapi.json").json()["paths"]
    assert list(paths["/webhooks/service/{provider}"]) == ["post"]


def test_provider_secrets_are_masked_when_settings_are_read(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as session:
        settings_service.set_value(
            session, "bounce.resend", {"enabled": True, "signing_key": "whsec_x"}
        )
        settings_service.set_value(
            session, "bounce.mailgun", {"enabled": True, "signing_key": "key-1"}
        )
        shown = settings_service.masked(settings_service.get_all(session))
    assert shown["bounce.resend"]["signing_key"] == settings_service.MASK
    assert shown["bounce.mailgun"]["signing_key"] == settings_service.MASK
    assert shown["bounce.azure"] == {
        "enabled": False,
        "key": "",
        "shared_secret": "",
        "shared_secret_header": "",
    }


def test_every_providers_secrets_are_masked(session_maker: sessionmaker[Session]) -> None:
    """Each provider of the registry: every secret it declares (fields of its settings object,
    flat keys) is shown as the mask, and nothing of it leaks."""
    registry = default_registry()
    assert {type(p) for p in registry.values()} == set(webhook_settings.PROVIDERS)
    objects = {
        p.settings.key: p.settings.secret_fields
        for p in registry.values()
        if p.settings.secret_fields
    }
    flat = [key for p in registry.values() for key in p.settings.secret_keys]
    # Every provider but SES (a certificate-signed SNS message, no shared secret) has one.
    assert [name for name, p in registry.items() if not p.settings.secret_fields] == ["ses"]
    assert flat == ["bounce.sendgrid_key"]
    with session_maker() as session:
        for key, fields in objects.items():
            value = dict(settings_service.DEFAULTS.get(key) or {"enabled": False})
            value.update({field: f"secret-of-{key}-{field}" for field in fields})
            settings_service.set_value(session, key, value)
        for key in flat:
            settings_service.set_value(session, key, f"secret-of-{key}")
        shown = settings_service.masked(settings_service.get_all(session))
    for key, fields in objects.items():
        for field in fields:
            assert shown[key][field] == settings_service.MASK, (key, field)
        assert "secret-of" not in json.dumps(shown[key])
    for key in flat:
        assert shown[key] == settings_service.MASK, key


def test_each_provider_declares_its_settings_and_defaults() -> None:
    """services.settings' defaults and secret tables come from the providers' declarations."""
    for provider in webhook_settings.PROVIDERS:
        declared = provider.settings
        assert declared.key == f"bounce.{provider.name}"
        if declared.default is not None:
            assert settings_service.DEFAULTS[declared.key] == declared.default
            assert set(declared.secret_fields) <= set(declared.default)
        for key, value in declared.flat_defaults.items():
            assert settings_service.DEFAULTS[key] == value
        if declared.secret_fields:
            assert settings_service.SECRET_FIELDS[declared.key] == declared.secret_fields
        assert set(declared.secret_keys) <= settings_service.SECRET_KEYS
        # Disabled by default: nothing is accepted until the admin enables a provider.
        lookup = settings_service.DEFAULTS.get
        assert webhook_settings.provider_config(lookup, provider.name) is None


def test_sns_unreachable_for_the_certificate_is_a_503(
    client: TestClient, sns_http: FakeSnsHttp, session_maker: sessionmaker[Session]
) -> None:
    with session_maker() as session:
        settings_service.set_value(session, "bounce.ses", {"topic_arns": [TOPIC_ARN]})
        session.commit()
    client.app.state.stmails.extras.pop("webhook_settings", None)  # type: ignore[attr-defined]
    sns_http.down = True
    response = post_ses(client, json.loads(sample("ses_bounce_notification.json")))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert len(sns_http.visited) == 1 and stored(session_maker) == []


def test_a_mailgun_request_is_accepted_by_one_server_process_only(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str
) -> None:
    with session_maker() as session:
        settings_service.set_value(
            session, "bounce.mailgun", {"enabled": True, "signing_key": "key-mailgun"}
        )
        session.commit()
    document = json.loads(sample("mailgun_failed.json"))
    signed = mailgun_sign(document, "key-mailgun", int(time.time()), "token-1")
    # The signature covers the token, not the body: a replay may carry another recipient.
    document["event-data"]["recipient"] = "someone-else@example.com"
    document["signature"] = json.loads(signed)["signature"]
    replayed = json.dumps(document).encode()
    # Two server processes on one database: two apps, each with its own memory of tokens.
    first, second = (
        TestClient(create_app(Settings(database_url=db_url), engine=engine)) for _ in range(2)
    )
    with first, second:
        accepted = first.post("/webhooks/service/mailgun", content=signed)
        assert (accepted.status_code, accepted.json()["recorded"]) == (200, 1)
        for client in (second, first):
            refused = client.post("/webhooks/service/mailgun", content=replayed)
            assert (refused.status_code, refused.json()) == (401, {"message": "invalid signature"})
    assert stored(session_maker) == [("alice@example.com", "hard", "mailgun")]


def test_a_provider_enabled_without_a_usable_secret_is_our_503(
    engine: Engine, session_maker: sessionmaker[Session], db_url: str
) -> None:
    # A stored setting the adapter cannot use (written past the settings validation, as an
    # older version might have left it): our configuration fault, answered as NotConfigured
    # says, with Retry-After so that the provider retries once it is fixed.
    with session_maker() as session:
        session.add(Setting(key="bounce.resend", value={"enabled": True, "signing_key": "x"}))
        session.commit()
    app = create_app(Settings(database_url=db_url), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/webhooks/service/resend", content=b"{}")
    assert response.status_code == NotConfigured.status == 503
    assert response.headers["retry-after"]
    assert response.json() == {"message": "resend webhooks are not configured"}
