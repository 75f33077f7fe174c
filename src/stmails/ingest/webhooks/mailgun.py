"""Mailgun webhooks (failed, complained): one JSON object with `signature` and `event-data`.

Settings (`bounce.mailgun`): `signing_key`, the HTTP webhook signing key; `tolerance_seconds`
(default 600). The signature is the hex HMAC-SHA256 of timestamp + token; because it does not
cover the body, each token is accepted once while its timestamp is fresh: remembered in memory,
and by the route in the database (services.webhook_nonces) so that no other server process
accepts it either.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

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
    required,
    secret_equals,
    text,
    timestamp,
)

NAME = "mailgun"
DEFAULT_TOLERANCE = 600

# Mailgun's `event` values; "failed" is refined by `severity` (permanent or temporary).
EVENT_TYPES: dict[str, EventType | None] = {
    "failed": "hard",
    "complained": "complaint",
    "accepted": None,
    "delivered": None,
    "opened": None,
    "clicked": None,
    "unsubscribed": None,
    "stored": None,
}
SEVERITIES: dict[str, EventType] = {"permanent": "hard", "temporary": "soft"}


class TokenMemory:
    """Tokens already accepted, forgotten after `ttl` seconds; at most `capacity` kept."""

    def __init__(self, ttl: float, capacity: int = 200_000) -> None:
        self.ttl = ttl
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, token: str, now: float, until: float | None = None) -> bool:
        """True the first time `token` is seen; False for a replay. It is remembered until
        `until` (default: `ttl` seconds from now)."""
        with self._lock:
            while self._seen and (
                len(self._seen) >= self._capacity or next(iter(self._seen.values())) < now
            ):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = max(until or 0.0, now + self.ttl)
            return True


class MailgunProvider(Provider):
    name = NAME
    event_types = EVENT_TYPES
    settings = ProviderSettings(
        "bounce.mailgun", {"enabled": False, "signing_key": ""}, secret_fields=("signing_key",)
    )

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._tokens = TokenMemory(ttl=2 * DEFAULT_TOLERANCE)

    def verify(self, request: WebhookRequest, config: Mapping[str, Any]) -> None:
        self._verified_token(request, config)

    def handle(self, request: WebhookRequest, config: Mapping[str, Any]) -> WebhookResult:
        """Verify, parse, and hand the token to the route: this process remembers it, and the
        route makes every other process refuse it too (services.webhook_nonces)."""
        token, until = self._verified_token(request, config)
        return WebhookResult(events=self.parse(request.body), once=token, once_until=until)

    def _verified_token(
        self, request: WebhookRequest, config: Mapping[str, Any]
    ) -> tuple[str, float]:
        """The request's token and until when it is remembered; SignatureError unless the
        signature is good and the token new to this process."""
        key = required(config, "signing_key", "mailgun signing key")
        document = load_json(request.body)
        signature = document.get("signature") if isinstance(document, Mapping) else None
        if not isinstance(signature, Mapping):
            raise SignatureError()
        stamp = text(signature.get("timestamp"), 20)
        token = text(signature.get("token"), 200)
        given = text(signature.get("signature"), 200)
        now = self.clock()
        fresh_until = require_fresh(stamp, now, config, DEFAULT_TOLERANCE)
        if not token:
            raise SignatureError()
        expected = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        if not secret_equals(given.lower(), expected):
            raise SignatureError()
        # Remembered only once the signature is good, so forged tokens cannot evict real ones.
        if not self._tokens.first_use(token, now, fresh_until):
            raise SignatureError()
        return token, fresh_until

    def parse(self, body: bytes) -> list[Event]:
        document = load_json(body)
        data = document.get("event-data") if isinstance(document, Mapping) else None
        if not isinstance(data, Mapping):
            raise PayloadError("Mailgun payload without event-data")
        name = text(data.get("event"), 32)
        type_ = EVENT_TYPES.get(name)
        if name == "failed":
            type_ = SEVERITIES.get(text(data.get("severity"), 16), "soft")
        email = email_of(data.get("recipient"))
        if type_ is None or not email:
            return []
        status = data.get("delivery-status")
        status = status if isinstance(status, Mapping) else {}
        message = data.get("message")
        headers = message.get("headers") if isinstance(message, Mapping) else None
        campaign, subscriber = attribution(data.get("user-variables"), headers)
        code = status.get("code")
        return [
            make_event(
                NAME,
                type_,
                email=email,
                event_id=text(data.get("id"), 200),
                diagnostic=text(status.get("message")) or text(status.get("description")),
                status=text(status.get("enhanced-code"), 16),
                replycode=str(code) if isinstance(code, int) else "",
                campaign=campaign,
                subscriber=subscriber,
                feedback_type="abuse" if type_ == "complaint" else "",
                occurred_at=timestamp(data.get("timestamp")),
                meta={"reason": text(data.get("reason"), 64)},
            )
        ]
