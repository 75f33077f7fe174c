"""What every ESP webhook adapter shares: the request it reads, the result it returns, its errors.

An adapter is a `Provider`: `verify()` checks that the request really comes from the provider
(raising `SignatureError`, whatever the cause, with one terse message), `parse()` turns the body
into normalized `Event`s (raising `PayloadError` on malformed input), and `handle()` runs both
plus any handshake the provider needs (SNS subscription confirmation, Event Grid validation).
Adapters never touch the database; the web route records the events and acknowledges afterwards.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from stmails.core import match_reason
from stmails.core.event import Event, EventType
from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep

# The one message every verification failure gets, so that a caller learns nothing about which
# check failed (missing header, stale timestamp, wrong key...).
SIGNATURE_FAILED = "invalid signature"

# Text from the internet is capped before any pattern scans it or it is stored.
MAX_TEXT = 2000
MAX_BODY = 5 * 1024 * 1024
MAX_EVENTS = 10_000

# Keys under which our own sending code puts the campaign and subscriber uuids in provider
# metadata (custom args, tags, metadata), and the headers every outgoing message carries.
# Ours, and listmonk's headers as providers echo them (mail that listmonk sent).
CAMPAIGN_KEYS = frozenset(
    {"stmails_campaign", "x-stmails-campaign", "campaign_uuid", "x-listmonk-campaign"}
)
SUBSCRIBER_KEYS = frozenset(
    {"stmails_subscriber", "x-stmails-subscriber", "subscriber_uuid", "x-listmonk-subscriber"}
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REPLYCODE = re.compile(r"^\s*(?:smtp\s*;\s*)?([245][0-9][0-9])(?![0-9])", re.IGNORECASE)
_STATUS = re.compile(r"(?<![0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9])")


class WebhookError(Exception):
    """Base of the errors an adapter raises; `status` is the HTTP status the route answers."""

    status: ClassVar[int] = 400


class SignatureError(WebhookError):
    """The request is not authentic (bad or missing signature, credentials, stale timestamp)."""

    status = 401

    def __init__(self) -> None:
        super().__init__(SIGNATURE_FAILED)


class PayloadError(WebhookError):
    """The body is not in the provider's documented format."""

    status = 400


class NotConfigured(WebhookError):
    """The provider is enabled without the secret its verification needs: our configuration
    fault, not the caller's, so the route answers 503 with Retry-After and the provider retries
    once the setting is fixed (a disabled or unknown provider is a 404 before any adapter runs).
    """

    status = 503


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One HTTP request as an adapter sees it: raw body, lower-cased headers, query, method.

    No provider signs the URL, so it is not part of the request (building it cost the route as
    much as a JSON parse).
    """

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"

    def header(self, name: str) -> str:
        """The header's value ("" when absent); `headers` keys are expected lower-case."""
        return self.headers.get(name.lower(), "")


@dataclass(slots=True)
class WebhookResult:
    """What the route does with a verified request.

    `events` are recorded in one transaction; only then is `after_commit` run (SNS subscription
    confirmation) and `reply` (a handshake answer, else `{"data": true}`) sent with 200.
    """

    events: list[Event] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    after_commit: Callable[[], None] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A one-time value the signature covers (Mailgun's token) and until when (Unix time) it
    # could verify: the route accepts it once across every server process, before recording.
    once: str = ""
    once_until: float = 0.0


SettingLookup = Callable[[str], Any]


@dataclass(frozen=True)
class ProviderSettings:
    """Where a provider's settings live, their defaults and which of them are secret.

    `key` is the settings object the adapter's `config` is read from (`bounce.<name>`, with
    `enabled`); `default` its default value (None: no default is stored); `secret_fields` the
    fields of that object that are masked on read. listmonk's providers add flat keys:
    `enabled_key` (a boolean that enables the provider instead of `enabled` inside `key`),
    `flat_defaults` (those keys' defaults) and `secret_keys` (flat keys whose value is secret).
    """

    key: str
    default: Mapping[str, Any] | None
    secret_fields: tuple[str, ...] = ()
    enabled_key: str = ""
    flat_defaults: Mapping[str, Any] = field(default_factory=dict)
    secret_keys: tuple[str, ...] = ()


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class Provider(ABC):
    """One ESP adapter. Subclasses set `name`, `event_types` and `settings` and implement the
    two steps.

    `event_types` maps the provider's own event (or bounce) type to ours; None means "known,
    acknowledged and ignored". Types missing from the table are ignored too.
    """

    name: ClassVar[str]
    event_types: ClassVar[Mapping[str, EventType | None]]
    settings: ClassVar[ProviderSettings]

    @classmethod
    def config_from(cls, lookup: SettingLookup) -> dict[str, Any] | None:
        """The adapter's `config` from the settings (`lookup(key)` reads one), or None when the
        provider is disabled."""
        settings = cls.settings
        config = _object(lookup(settings.key))
        if settings.enabled_key:
            return config if lookup(settings.enabled_key) is True else None
        return config if config.get("enabled") is True else None

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        # The time seam of the providers whose signatures cover a timestamp.
        self.clock = clock

    @abstractmethod
    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        """Raise `SignatureError` unless the request is authentic under `config`."""

    @abstractmethod
    def parse(self, body: bytes) -> list[Event]:
        """The events in a (verified) body; `PayloadError` when it is not the documented shape.

        Records of unknown or ignored types give no event; they are acknowledged all the same.
        """

    def may_block(self, config: Mapping[str, Any]) -> bool:
        """True when `handle()` may wait on the network under `config` (run it on a thread)."""
        return False

    def handle(self, request: WebhookRequest, config: Mapping[str, Any]) -> WebhookResult:
        """Verify, then parse: the whole adapter as the route and `webhooks replay` run it."""
        self.verify(request, config)
        return WebhookResult(events=self.parse(request.body))


# ---------------------------------------------------------------- helpers shared by adapters


def load_json(body: bytes | str) -> Any:
    """The JSON document in `body`; `PayloadError` when it is too big or not JSON.

    Invalid UTF-8, lone surrogates, NaN/Infinity and nesting deeper than 1,024 levels are not
    JSON here (orjson's strict reading), so nothing downstream meets them.
    """
    if len(body) > MAX_BODY:
        raise PayloadError("payload too large")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError("payload is not valid JSON") from exc
    if too_deep(document):
        raise PayloadError(f"payload nests deeper than {MAX_JSON_DEPTH} levels")
    return document


def as_list(document: Any) -> list[Mapping[str, Any]]:
    """A batch as a list of objects: providers send either one object or an array of them."""
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_EVENTS:
        raise PayloadError("too many events in one request")
    if not all(isinstance(item, Mapping) for item in items):
        raise PayloadError("events must be JSON objects")
    return items


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A payload value as capped text ("" for None, objects and lists)."""
    # Most values are already strings: the one cheap check first (Mapping's is an ABC check).
    if type(value) is str:
        return value[:limit]
    if value is None or isinstance(value, (Mapping, list)):
        return ""
    return str(value)[:limit]


def email_of(value: Any) -> str:
    """A recipient address: the bare address of `Name <addr>`, stripped and capped."""
    raw = text(value, 512).strip()
    if "<" in raw and raw.endswith(">"):
        raw = raw[raw.rfind("<") + 1 : -1]
    return raw.strip()


def timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch seconds/milliseconds or an ISO 8601 string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        seconds = float(value)
        if seconds > 1e11:
            seconds /= 1000.0
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def smtp_codes(diagnostic: str, status: str = "", replycode: str = "") -> tuple[str, str]:
    """The RFC 3463 status and SMTP reply code, taken from the diagnostic when not given."""
    capped = diagnostic[:MAX_TEXT]
    if not status:
        found = _STATUS.search(capped)
        status = found.group(1) if found else ""
    if not replycode:
        found = _REPLYCODE.match(capped)
        replycode = found.group(1) if found else ""
    return status, replycode


def uuid_or_empty(value: Any) -> str:
    """`value` when it is a UUID string (lower-cased), else "" so that junk never attributes."""
    candidate = text(value, 64).strip()
    return candidate.lower() if _UUID.fullmatch(candidate) else ""


def attribution(*sources: Mapping[str, Any] | Iterable[Any] | None) -> tuple[str, str]:
    """(campaign uuid, subscriber uuid) from provider metadata, tags or echoed headers.

    Each source is a mapping (custom args, metadata, headers as a dict) or a list of
    `{"name"/"key": ..., "value": ...}` pairs; keys are matched case-insensitively. A mapping
    value that is itself a JSON object (Brevo's X-Mailin-custom, Mailjet's Payload) is searched.
    """
    campaign = subscriber = ""
    for pairs in _pairs(sources):
        for key, value in pairs:
            lowered = key.lower()
            if not campaign and lowered in CAMPAIGN_KEYS:
                campaign = uuid_or_empty(value)
            elif not subscriber and lowered in SUBSCRIBER_KEYS:
                subscriber = uuid_or_empty(value)
    return campaign, subscriber


def _pairs(sources: Iterable[Any]) -> Iterable[list[tuple[str, Any]]]:
    for source in sources:
        if isinstance(source, str) and source.startswith("{") and len(source) <= MAX_TEXT:
            try:
                source = orjson.loads(source)
            except orjson.JSONDecodeError:
                continue
        if isinstance(source, Mapping):
            yield [(str(k), v) for k, v in source.items()]
            nested = [v for v in source.values() if isinstance(v, str) and v.startswith("{")]
            yield from _pairs(nested)
        elif isinstance(source, list):
            pairs: list[tuple[str, Any]] = []
            for item in source[:200]:
                if isinstance(item, Mapping):
                    key = item.get("name", item.get("key", item.get("Name", "")))
                    pairs.append((str(key), item.get("value", item.get("Value"))))
            yield pairs


def make_event(
    source: str,
    type_: EventType,
    *,
    email: str,
    event_id: str,
    diagnostic: str = "",
    status: str = "",
    replycode: str = "",
    campaign: str = "",
    subscriber: str = "",
    feedback_type: str = "",
    occurred_at: datetime | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Event:
    """One Event, its reason given by the classifier's matcher, as every adapter builds it."""
    diagnostic = text(diagnostic)
    status, replycode = smtp_codes(diagnostic, text(status, 16), text(replycode, 16))
    # Complaints carry no SMTP diagnostic; "feedback" is the vocabulary's word for them.
    reason = "feedback" if type_ == "complaint" else match_reason(diagnostic, status, replycode)
    return Event(
        source=source,
        type=type_,
        email=email.lower(),
        subscriber_uuid=subscriber,
        campaign_uuid=campaign,
        reason=reason,
        status=status,
        replycode=replycode,
        diagnostic=diagnostic,
        feedback_type=text(feedback_type, 64),
        event_id=text(event_id, 200),
        occurred_at=occurred_at,
        meta=dict(meta or {}),
    )


def secret_equals(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison; an empty expected secret never matches."""
    given_b = given.encode() if isinstance(given, str) else given
    expected_b = expected.encode() if isinstance(expected, str) else expected
    return bool(expected_b) and hmac.compare_digest(given_b, expected_b)


def required(config: Mapping[str, Any], key: str, what: str) -> str:
    """The setting `key` of a provider's config; `NotConfigured` ("<what> is not set") when it
    is missing or empty: an enabled provider without its secret is our fault, not the caller's."""
    value = str(config.get(key) or "")
    if not value:
        raise NotConfigured(f"{what} is not set")
    return value


def require_fresh(stamp: str, now: float, config: Mapping[str, Any], default: int) -> float:
    """Raise `SignatureError` unless `stamp` (epoch seconds) is within the tolerance of `now`;
    returns the time until which the stamp stays fresh.

    The tolerance is `config["tolerance_seconds"]`, else `default`; it bounds replays of
    signatures that cover a timestamp.
    """
    tolerance = int(config.get("tolerance_seconds") or default)
    if not stamp.isdigit() or len(stamp) > 12 or abs(now - int(stamp)) > tolerance:
        raise SignatureError()
    return float(int(stamp) + tolerance)


def check_basic_auth(request: WebhookRequest, username: str, password: str) -> None:
    """Raise `SignatureError` unless the request carries these Basic credentials."""
    header = request.header("authorization")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not username:
        raise SignatureError()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise SignatureError() from exc
    user, _, secret = decoded.partition(":")
    # Both halves are compared so that the time taken does not tell which one was wrong.
    user_ok = secret_equals(user, username)
    secret_ok = secret_equals(secret, password)
    if not (user_ok and secret_ok):
        raise SignatureError()


def check_bearer_or_basic(request: WebhookRequest, config: Mapping[str, Any]) -> None:
    """Accept `Authorization: Bearer <token>` when `token` is configured, else Basic auth."""
    token = str(config.get("token") or "")
    header = request.header("authorization")
    if token and header.lower().startswith("bearer "):
        if not secret_equals(header[7:].strip(), token):
            raise SignatureError()
        return
    check_basic_auth(request, str(config.get("username") or ""), str(config.get("password") or ""))
