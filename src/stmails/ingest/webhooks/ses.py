"""Amazon SES bounce and complaint notifications, delivered by Amazon SNS over HTTPS.

Settings (`bounce.ses`): `topic_arns` (the allowlist; nothing else is accepted),
`auto_confirm` (visit SubscribeURL once a SubscriptionConfirmation passed every check; else
the URL is logged for a manual confirmation) and `signing_cert_pem` (when set, this certificate
is trusted and no SigningCertURL is fetched: tests and air-gapped installs).

Verification follows the SNS documentation: the canonical string of the message's fields is
checked against `Signature` with the certificate at `SigningCertURL` (RSA, SHA1 for
SignatureVersion 1, SHA256 for 2). The certificate is fetched only over https from an
`sns.<region>.amazonaws.com(.cn)` host, without redirects, and cached; a fetch that failed is
not tried again for CERT_RETRY_SECONDS (requests meanwhile get the same 503), so a stream of
messages naming an unreachable certificate costs no more than one fetch a minute. The signed
`Timestamp` must be within `tolerance_seconds` (default one hour, SNS's longest retry policy)
of now, which bounds replays of a captured message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stmails.core.event import Event, EventType
from stmails.ingest.webhooks.base import (
    PayloadError,
    Provider,
    ProviderSettings,
    SignatureError,
    WebhookRequest,
    WebhookResult,
    attribution,
    email_of,
    load_json,
    make_event,
    require_fresh,
    text,
    timestamp,
)

log = logging.getLogger(__name__)

NAME = "ses"

# SES bounce types and notification types to ours; the rest (Delivery, Send, Open...) is ignored.
BOUNCE_TYPES: dict[str, EventType] = {
    "Permanent": "hard",
    "Transient": "soft",
    "Undetermined": "soft",
}
NOTIFICATION_TYPES: dict[str, EventType | None] = {
    "Bounce": "hard",
    "Complaint": "complaint",
    "Delivery": None,
    "Send": None,
    "Reject": None,
    "Open": None,
    "Click": None,
    "Rendering Failure": None,
    "DeliveryDelay": None,
    "Subscription": None,
    "AmazonSnsSubscriptionSucceeded": None,
}

# The fields SNS signs, in the documented order, per message type.
_SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SUBSCRIPTION_FIELDS,
    "UnsubscribeConfirmation": _SUBSCRIPTION_FIELDS,
}

# SignatureVersion 1 is SHA1 by definition, version 2 SHA256; both pad as PKCS #1 v1.5. The
# algorithm and padding objects are stateless descriptions, shared by every verification.
_SIGNATURE_HASHES: dict[str, hashes.HashAlgorithm] = {"1": hashes.SHA1(), "2": hashes.SHA256()}
_PKCS1V15 = padding.PKCS1v15()
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]{1,40}\.amazonaws\.com(\.cn)?")
_CERT_CACHE_SIZE = 64
_CERT_BYTES = 64 * 1024
# Seconds a failed certificate fetch is remembered (and not tried again).
CERT_RETRY_SECONDS = 60.0
# Default seconds an SNS message's Timestamp may be away from now.
SNS_TOLERANCE_SECONDS = 3600


class SnsHttp(Protocol):
    """The one network seam: GET an SNS URL (certificate or subscription confirmation)."""

    def get(self, url: str) -> bytes:
        """The response body; raises on any non-2xx answer, redirect or transport error."""
        ...


class HttpxSnsHttp:
    """`SnsHttp` over httpx: no redirects, short timeouts, bounded response size."""

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout

    def get(self, url: str) -> bytes:
        try:
            with (
                httpx.Client(follow_redirects=False, timeout=self._timeout) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise OSError(f"SNS answered {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > _CERT_BYTES:
                        raise OSError("SNS response too large")
                return body
        except httpx.HTTPError as exc:
            # One error type for the seam: the route answers 503 to it (ours to retry).
            raise OSError(f"SNS request failed: {exc}") from exc


def is_sns_url(url: str) -> bool:
    """True for an https URL on an `sns.<region>.amazonaws.com(.cn)` host and default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and _SNS_HOST.fullmatch(parts.hostname or "") is not None
    )


def canonical_string(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs: `Name\\nvalue\\n` for each signed field present, in order."""
    fields = SIGNED_FIELDS.get(str(message.get("Type", "")))
    if fields is None:
        raise SignatureError()
    out: list[str] = []
    for name in fields:
        value = message.get(name)
        if value is None:
            # Subject is the one optional signed field; every other one must be present.
            if name == "Subject":
                continue
            raise SignatureError()
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode("utf-8")


class SesProvider(Provider):
    """SES through SNS; `http` is the network seam (certificate fetch, confirmation GET)."""

    name = NAME
    event_types = NOTIFICATION_TYPES
    settings = ProviderSettings(
        "bounce.ses",
        {"topic_arns": [], "auto_confirm": False, "signing_cert_pem": ""},
        enabled_key="bounce.ses_enabled",
        flat_defaults={"bounce.ses_enabled": False},
    )

    def __init__(self, http: SnsHttp | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._http: SnsHttp = http or HttpxSnsHttp()
        self._certs: dict[str, rsa.RSAPublicKey] = {}
        # URL -> (time of the failure, its message), for fetches that failed lately.
        self._failed: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def may_block(self, config: Mapping[str, Any]) -> bool:
        # Without a trusted certificate in the settings, one may have to be fetched from SNS.
        return not config.get("signing_cert_pem")

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        self._verify_message(_envelope(request.body), config)

    def _verify_message(self, message: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        allowed = config.get("topic_arns") or []
        if not isinstance(allowed, list) or message.get("TopicArn") not in allowed:
            raise SignatureError()
        # The Timestamp is signed: checked here, it is checked again with the signature.
        sent_at = timestamp(message.get("Timestamp"))
        if sent_at is None:
            raise SignatureError()
        require_fresh(str(int(sent_at.timestamp())), self.clock(), config, SNS_TOLERANCE_SECONDS)
        algorithm = _SIGNATURE_HASHES.get(str(message.get("SignatureVersion", "")))
        if algorithm is None:
            raise SignatureError()
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError() from exc
        key = self._public_key(str(message.get("SigningCertURL", "")), config)
        try:
            key.verify(signature, canonical_string(message), _PKCS1V15, algorithm)
        except InvalidSignature as exc:
            raise SignatureError() from exc

    def handle(self, request: WebhookRequest, config: Mapping[str, Any]) -> WebhookResult:
        # The envelope is parsed once for verifying and parsing: it is most of the body.
        message = _envelope(request.body)
        self._verify_message(message, config)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            return self._subscription(message, config)
        if kind == "UnsubscribeConfirmation":
            # Visiting SubscribeURL here would subscribe again: only note it.
            log.warning("SNS unsubscribed %s", text(message.get("TopicArn"), 300))
            return WebhookResult()
        return WebhookResult(events=_message_events(message))

    def parse(self, body: bytes) -> list[Event]:
        return _message_events(_envelope(body))

    def _subscription(self, message: Mapping[str, Any], config: Mapping[str, Any]) -> WebhookResult:
        url = text(message.get("SubscribeURL"), 2000)
        if not is_sns_url(url):
            raise SignatureError()
        topic = text(message.get("TopicArn"), 300)
        if not config.get("auto_confirm"):
            log.warning("SNS subscription to %s awaits manual confirmation: %s", topic, url)
            return WebhookResult()

        def confirm() -> None:
            self._http.get(url)
            log.info("SNS subscription to %s confirmed", topic)

        return WebhookResult(after_commit=confirm)

    def _public_key(self, url: str, config: Mapping[str, Any]) -> rsa.RSAPublicKey:
        pem = config.get("signing_cert_pem")
        if pem:
            # The settings' own string is the cache key: Python keeps its hash, so a request
            # neither encodes nor hashes the PEM again.
            return _rsa_key(pem if isinstance(pem, str) else str(pem))
        if not is_sns_url(url) or not url.endswith(".pem"):
            raise SignatureError()
        now = self.clock()
        with self._lock:
            cached = self._certs.get(url)
            failed = self._failed.get(url)
        if cached is not None:
            return cached
        if failed is not None and now - failed[0] < CERT_RETRY_SECONDS:
            raise OSError(f"SNS certificate {url} failed lately ({failed[1]}); not fetched again")
        try:
            key = _rsa_key(self._http.get(url))
        except OSError as exc:
            log.warning("SNS certificate %s could not be fetched: %s", url, exc)
            with self._lock:
                _remember(self._failed, url, (now, str(exc)[:200]))
            raise
        with self._lock:
            _remember(self._certs, url, key)
            self._failed.pop(url, None)
        return key


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    """Stores `value` under `key`, dropping the oldest entry past _CERT_CACHE_SIZE."""
    if key not in cache and len(cache) >= _CERT_CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _message_events(message: Mapping[str, Any]) -> list[Event]:
    """The events of an SNS envelope (none unless it is a Notification)."""
    if message.get("Type") != "Notification":
        return []
    inner_text = text(message.get("Message"), 1_000_000)
    # SES sends a plain-text "Successfully validated SNS topic..." when a topic is set up.
    if not inner_text.lstrip().startswith("{"):
        return []
    notification = load_json(inner_text)
    if not isinstance(notification, Mapping):
        raise PayloadError("SES notification is not a JSON object")
    return notification_events(notification, message)


# The certificate trusted through the settings is the same PEM on every request: parsing it
# again each time cost as much as verifying the signature.
@functools.lru_cache(maxsize=8)
def _rsa_key(pem: bytes | str) -> rsa.RSAPublicKey:
    try:
        data = pem.encode() if isinstance(pem, str) else pem
        key = x509.load_pem_x509_certificate(data).public_key()
    except ValueError as exc:
        raise SignatureError() from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError()
    return key


def _envelope(body: bytes) -> Mapping[str, Any]:
    message = load_json(body)
    if not isinstance(message, Mapping):
        raise PayloadError("SNS message is not a JSON object")
    return message


def notification_events(
    notification: Mapping[str, Any], envelope: Mapping[str, Any] | None = None
) -> list[Event]:
    """One Event per bounced or complained recipient of an SES notification (either format)."""
    kind = text(notification.get("notificationType") or notification.get("eventType"), 64)
    mail = notification.get("mail")
    mail = mail if isinstance(mail, Mapping) else {}
    tags = mail.get("tags")
    flat_tags = (
        {k: v[0] if isinstance(v, list) and v else v for k, v in tags.items()}
        if isinstance(tags, Mapping)
        else None
    )
    headers = mail.get("headers") if isinstance(mail.get("headers"), list) else None
    campaign = subscriber = ""
    if flat_tags is not None or headers is not None:
        campaign, subscriber = attribution(flat_tags, headers)
    # make_event() copies `meta` into each event, so the recipients of one report share it.
    meta = {"ses_message_id": text(mail.get("messageId"), 200)}
    if envelope is not None:
        meta["sns_message_id"] = text(envelope.get("MessageId"), 200)
    if kind == "Bounce":
        bounce = notification.get("bounce")
        if not isinstance(bounce, Mapping):
            raise PayloadError("SES Bounce without a bounce object")
        type_ = BOUNCE_TYPES.get(text(bounce.get("bounceType"), 64), "soft")
        meta["bounce_sub_type"] = text(bounce.get("bounceSubType"), 64)
        feedback_id = text(bounce.get("feedbackId"), 150)
        occurred_at = timestamp(bounce.get("timestamp"))
        return [
            make_event(
                NAME,
                type_,
                email=email,
                event_id=_recipient_event_id(feedback_id, email),
                diagnostic=text(rcpt.get("diagnosticCode")),
                status=text(rcpt.get("status"), 16),
                campaign=campaign,
                subscriber=subscriber,
                occurred_at=occurred_at,
                meta=meta,
            )
            for rcpt, email in _recipients(bounce.get("bouncedRecipients"))
        ]
    if kind == "Complaint":
        complaint = notification.get("complaint")
        if not isinstance(complaint, Mapping):
            raise PayloadError("SES Complaint without a complaint object")
        meta["complaint_sub_type"] = text(complaint.get("complaintSubType"), 64)
        feedback_id = text(complaint.get("feedbackId"), 150)
        feedback_type = text(complaint.get("complaintFeedbackType"), 64) or "abuse"
        occurred_at = timestamp(complaint.get("timestamp"))
        return [
            make_event(
                NAME,
                "complaint",
                email=email,
                event_id=_recipient_event_id(feedback_id, email),
                feedback_type=feedback_type,
                campaign=campaign,
                subscriber=subscriber,
                occurred_at=occurred_at,
                meta=meta,
            )
            for _, email in _recipients(complaint.get("complainedRecipients"))
        ]
    return []


def _recipients(value: Any) -> list[tuple[Mapping[str, Any], str]]:
    """(recipient object, its address) for each of the first 1,000 entries that has one."""
    if not isinstance(value, list):
        raise PayloadError("SES recipients must be a list")
    found = []
    for recipient in value[:1000]:
        if isinstance(recipient, Mapping):
            email = email_of(recipient.get("emailAddress"))
            if email:
                found.append((recipient, email))
    return found


def _recipient_event_id(feedback_id: str, email: str) -> str:
    # One SES feedback id covers every recipient of the report: the pair is the event's id.
    return f"{feedback_id}:{email}"
