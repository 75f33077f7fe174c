"""Amazon SES through SNS: signatures with our own certificate, formats, subscription handling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stmails.ingest.webhooks import SignatureError, WebhookRequest
from stmails.ingest.webhooks.ses import SesProvider, is_sns_url

from .contract import CAMPAIGN, Case, WebhookContract, sample
from .signing import CERT_URL, TOPIC_ARN, self_signed, sns_message, sns_signer

CONFIG = {"topic_arns": [TOPIC_ARN], "signing_cert_pem": sns_signer().cert_pem}


class FakeSnsHttp:
    """The network seam: serves our certificate and counts what was fetched."""

    def __init__(self, cert_pem: str = "") -> None:
        self.cert_pem = cert_pem or sns_signer().cert_pem
        self.visited: list[str] = []

    def get(self, url: str) -> bytes:
        self.visited.append(url)
        return self.cert_pem.encode()


def request(document: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(body=json.dumps(document).encode())


def sign(body: bytes) -> WebhookRequest:
    return request(sns_message(body.decode("utf-8", "replace")))


def forge(body: bytes) -> WebhookRequest:
    key, cert = self_signed("sns.us-east-1.amazonaws.com")
    from cryptography.hazmat.primitives import serialization

    from .signing import RsaSigner

    other = RsaSigner(key, cert.public_bytes(serialization.Encoding.PEM).decode())
    return request(sns_message(body.decode(), signer=other))


class TestSesContract(WebhookContract):
    case = Case(
        provider=SesProvider,
        config=CONFIG,
        sign=sign,
        forge=forge,
        sample="ses_complaint_event.json",
        expected=[("recipient@example.com", "complaint")],
        unknown_event={"notificationType": "Received", "mail": {}},
    )


def test_one_event_per_bounced_recipient_with_reasons() -> None:
    result = SesProvider().handle(sign(sample("ses_bounce_notification.json")), CONFIG)
    jane, richard = result.events
    assert (jane.email, jane.type, jane.status, jane.replycode) == (
        "jane@example.com",
        "hard",
        "5.1.1",
        "550",
    )
    assert jane.reason == "userunknown"
    assert richard.reason == "mailboxfull"
    assert jane.campaign_uuid == CAMPAIGN and jane.subscriber_uuid == ""
    assert jane.event_id.startswith("00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a")
    assert jane.occurred_at is not None and jane.occurred_at.year == 2016


@pytest.mark.parametrize(
    ("bounce_type", "expected"),
    [("Transient", "soft"), ("Undetermined", "soft"), ("Permanent", "hard")],
)
def test_bounce_types_map_to_ours(bounce_type: str, expected: str) -> None:
    notification = json.loads(sample("ses_bounce_notification.json"))
    notification["bounce"]["bounceType"] = bounce_type
    events = SesProvider().handle(request(sns_message(notification)), CONFIG).events
    assert {e.type for e in events} == {expected}


def test_event_publishing_bounce_format_is_read() -> None:
    notification = json.loads(sample("ses_bounce_notification.json"))
    notification["eventType"] = notification.pop("notificationType")
    events = SesProvider().handle(request(sns_message(notification)), CONFIG).events
    assert len(events) == 2


def test_signature_version_1_sha1_verifies() -> None:
    message = sns_message(json.loads(sample("ses_bounce_notification.json")), version="1")
    assert len(SesProvider().handle(request(message), CONFIG).events) == 2


def test_a_version_1_signature_presented_as_version_2_fails() -> None:
    message = sns_message(json.loads(sample("ses_bounce_notification.json")), version="1")
    message["SignatureVersion"] = "2"
    with pytest.raises(SignatureError):
        SesProvider().handle(request(message), CONFIG)


def test_subject_is_part_of_the_signed_string() -> None:
    message = sns_message({"notificationType": "Delivery"}, subject="Amazon SES Notification")
    assert SesProvider().handle(request(message), CONFIG).events == []
    message["Subject"] = "changed"
    with pytest.raises(SignatureError):
        SesProvider().handle(request(message), CONFIG)


def test_topics_outside_the_allowlist_are_refused() -> None:
    message = sns_message(
        json.loads(sample("ses_bounce_notification.json")),
        topic="arn:aws:sns:us-east-1:999999999999:someone-else",
    )
    with pytest.raises(SignatureError):
        SesProvider().handle(request(message), CONFIG)


def test_the_topic_validation_message_and_deliveries_are_ignored() -> None:
    text = "Successfully validated SNS topic for Amazon SES event publishing."
    assert SesProvider().handle(request(sns_message(text)), CONFIG).events == []
    delivery = sns_message(json.loads(sample("ses_delivery_notification.json")))
    assert SesProvider().handle(request(delivery), CONFIG).events == []


def test_the_certificate_is_fetched_from_sns_once_and_cached() -> None:
    http = FakeSnsHttp()
    provider = SesProvider(http=http)
    config = {"topic_arns": [TOPIC_ARN]}
    for _ in range(3):
        provider.handle(
            request(sns_message(json.loads(sample("ses_bounce_notification.json")))), config
        )
    assert http.visited == [CERT_URL]


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://s3.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
    ],
)
def test_certificates_are_never_fetched_from_other_hosts(url: str) -> None:
    http = FakeSnsHttp()
    message = sns_message(json.loads(sample("ses_bounce_notification.json")))
    message["SigningCertURL"] = url
    with pytest.raises(SignatureError):
        SesProvider(http=http).handle(request(message), {"topic_arns": [TOPIC_ARN]})
    assert http.visited == []


def test_sns_hosts_of_every_partition_are_accepted() -> None:
    assert is_sns_url("https://sns.eu-west-3.amazonaws.com/x.pem")
    assert is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem")


def test_subscription_is_confirmed_only_after_every_check() -> None:
    http = FakeSnsHttp()
    provider = SesProvider(http=http)
    config = {**CONFIG, "auto_confirm": True}
    confirmation = sns_message("You have chosen to subscribe...", kind="SubscriptionConfirmation")
    result = provider.handle(request(confirmation), config)
    assert result.events == [] and http.visited == []
    assert result.after_commit is not None
    result.after_commit()
    assert http.visited == [confirmation["SubscribeURL"]]

    forged = dict(confirmation, Token="another-token")
    with pytest.raises(SignatureError):
        provider.handle(request(forged), config)
    assert len(http.visited) == 1


def test_subscription_waits_for_a_human_when_auto_confirm_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    confirmation = sns_message("You have chosen to subscribe...", kind="SubscriptionConfirmation")
    result = SesProvider(http=FakeSnsHttp()).handle(request(confirmation), CONFIG)
    assert result.after_commit is None
    assert confirmation["SubscribeURL"] in caplog.text


def test_unsubscribe_confirmation_never_resubscribes() -> None:
    http = FakeSnsHttp()
    message = sns_message("You have unsubscribed", kind="UnsubscribeConfirmation")
    result = SesProvider(http=http).handle(request(message), {**CONFIG, "auto_confirm": True})
    assert result.events == [] and result.after_commit is None and http.visited == []
