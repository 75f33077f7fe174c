"""`POST /webhooks/service/{provider}`: ESP bounce and complaint webhooks.

The adapter of `ingest.webhooks` verifies the request (a bad signature is a 401 with one terse
message, whatever failed) and turns it into events; every event is recorded through the
group-commit writer, and the answer is 200 only once all of them are committed. Our own faults
(database down, a provider enabled without its secret, an SNS confirmation that could not be
sent) are 503 with Retry-After, so that the provider retries. Unknown event types are
acknowledged and ignored, so that the provider does not retry them forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stmails.core.event import Event
from stmails.ingest.webhooks import (
    NotConfigured,
    Provider,
    SignatureError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    default_registry,
)
from stmails.ingest.webhooks.settings import provider_config
from stmails.services import settings as settings_service
from stmails.services import webhook_nonces
from stmails.services.bounces import RecordError
from stmails.web.deps import AppState
from stmails.web.errors import ApiError, error_response, unavailable
from stmails.web.hot_paths import json_headers, read_body, send_json
from stmails.web.responses import json_bytes

log = logging.getLogger("stmails.web.webhooks")

# Settings are read at most this often per process, so that the hot path does not query them.
SETTINGS_TTL_SECONDS = 5.0
_REGISTRY_KEY = "webhook_providers"
_SETTINGS_KEY = "webhook_settings"


def registry(state: AppState) -> dict[str, Provider]:
    """The adapters of this app (made once: they keep certificate caches and token memory)."""
    providers = state.extras.get(_REGISTRY_KEY)
    if providers is None:
        providers = state.extras[_REGISTRY_KEY] = default_registry()
    adapters: dict[str, Provider] = providers
    return adapters


@dataclass(slots=True)
class SettingsSnapshot:
    """The settings as read at `read_at` (monotonic), and each provider's config derived from
    them once, on first use (so a request neither queries nor copies them)."""

    read_at: float
    values: Mapping[str, Any]
    configs: dict[str, Mapping[str, Any] | None] = field(default_factory=dict)

    def provider_config(self, provider: str) -> Mapping[str, Any] | None:
        """The config of `provider` (known to the registry), or None when it is disabled."""
        try:
            return self.configs[provider]
        except KeyError:
            pass
        config: Mapping[str, Any] | None = None
        if self.values.get("bounce.webhooks_enabled") is not False:
            config = provider_config(self.values.get, provider)
        self.configs[provider] = config
        return config


def _cached_settings(state: AppState) -> SettingsSnapshot | None:
    cached: SettingsSnapshot | None = state.extras.get(_SETTINGS_KEY)
    if cached is not None and time.monotonic() - cached.read_at < SETTINGS_TTL_SECONDS:
        return cached
    return None


def _settings_snapshot(state: AppState) -> SettingsSnapshot:
    cached = _cached_settings(state)
    if cached is not None:
        return cached
    now = time.monotonic()
    with state.readonly_sessions() as session:
        values = settings_service.get_all(session)
    snapshot = state.extras[_SETTINGS_KEY] = SettingsSnapshot(now, values)
    return snapshot


def forget_settings(state: AppState) -> None:
    """Drop the cached settings (after they changed, and in tests)."""
    state.extras.pop(_SETTINGS_KEY, None)


async def record_events(state: AppState, events: list[Event]) -> dict[str, int]:
    """Record every event (each committed before this returns); 503 when we cannot."""
    writer = state.writer
    if writer is None:
        raise unavailable("the bounce writer is not running; retry later")
    # gather() costs a task per event: worth it only when there is more than one to wait on.
    outcomes: list[Any]
    if len(events) == 1:
        try:
            outcomes = [await writer.submit(events[0])]
        except Exception as exc:
            outcomes = [exc]
    else:
        outcomes = await asyncio.gather(*(writer.submit(e) for e in events), return_exceptions=True)
    counts = {"recorded": 0, "duplicates": 0, "rejected": 0}
    for event, outcome in zip(events, outcomes, strict=True):
        if isinstance(outcome, RecordError):
            # The provider's data cannot be stored (e.g. no usable address): retrying will not
            # help, so it is reported and acknowledged with the rest.
            log.warning("webhook %s event %s rejected: %s", event.source, event.event_id, outcome)
            counts["rejected"] += 1
        elif isinstance(outcome, ApiError):
            raise outcome
        elif isinstance(outcome, BaseException):
            log.warning("webhook %s event not recorded: %r", event.source, outcome)
            raise unavailable()
        elif getattr(outcome, "duplicate", False):
            counts["duplicates"] += 1
        else:
            counts["recorded"] += 1
    return counts


OPENAPI_OPERATION: dict[str, Any] = {
    "tags": ["webhooks"],
    "summary": "Record bounces and complaints from an email service provider",
    "description": (
        "The provider's own request (SES through SNS, SendGrid, Postmark, Forward Email, "
        "Mailgun, SparkPost, Brevo, Mailjet, Resend, Azure Event Grid), verified with the "
        "provider's signature or credentials. Answers 200 once every event is committed; "
        "unknown event types are acknowledged and ignored. See docs/bounce-channels.md."
    ),
    "operationId": "post_service_webhook",
    "parameters": [
        {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}}
    ],
    "responses": {
        "200": {
            "description": "recorded (duplicates are acknowledged), or a handshake answer",
            "content": {
                "application/json": {
                    "example": {"data": True, "recorded": 1, "duplicates": 0, "rejected": 0}
                }
            },
        },
        "400": {"description": "the body is not in the provider's format"},
        "401": {"description": "invalid signature (one terse message for every failure)"},
        "404": {"description": "unknown or disabled provider"},
        "413": {"description": "body over the size cap"},
        "503": {"description": "our fault (database, configuration, SNS); retry (Retry-After)"},
    },
    "security": [],
}


class ServiceWebhook:
    """The ASGI endpoint of `/webhooks/service/{provider}` (POST, and OPTIONS handshakes).

    A plain ASGI app rather than a FastAPI route, like `POST /webhooks/bounce`: it is a hot path
    that needs none of the dependency machinery, nor a Starlette Request. Raised ApiErrors are
    answered by the app's exception handlers.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await handle_provider_request(scope["path_params"]["provider"], scope, receive)
        await answer(scope, receive, send)


route = Route(
    "/webhooks/service/{provider}",
    ServiceWebhook(),
    methods=["POST", "OPTIONS"],
    name="service_webhook",
)


class JsonAnswer:
    """A 200 `application/json` answer, sent as its two ASGI messages (the success path builds
    no Starlette Response)."""

    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: Mapping[str, str]) -> None:
        self.body = body
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, self.body, json_headers(self.body, self.headers.items()))


def webhook_request(scope: Scope, body: bytes) -> WebhookRequest:
    """What an adapter sees of the request: ASGI header names are already lower-case."""
    query = scope.get("query_string", b"")
    return WebhookRequest(
        body=body,
        headers={
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        },
        query=dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {},
        method=scope["method"],
    )


def _first_use(state: AppState, provider: str, result: WebhookResult) -> bool:
    """True the first time any server process sees the request's one-time value."""
    until = datetime.fromtimestamp(result.once_until, UTC)
    with state.sessions() as session:
        fresh = webhook_nonces.first_use(session, provider, result.once, until)
        session.commit()
    return fresh


async def handle_provider_request(provider: str, scope: Scope, receive: Receive) -> ASGIApp:
    """The whole route: adapter lookup, verification, recording; returns the answer to send."""
    state: AppState = scope["app"].state.stmails
    adapter = registry(state).get(provider)
    # The database is read (on a thread) only when the cached settings are stale.
    snapshot = _cached_settings(state)
    if snapshot is None:
        snapshot = await run_in_threadpool(_settings_snapshot, state)
    config = snapshot.provider_config(provider) if adapter else None
    if adapter is None or config is None:
        return error_response(404, "unknown or disabled provider")
    incoming = webhook_request(scope, await read_body(receive))
    try:
        # Verification is a little CPU work, done in place; only an adapter that may wait on
        # the network (SES fetching its signing certificate) is run on a thread.
        if adapter.may_block(config):
            result: WebhookResult = await run_in_threadpool(adapter.handle, incoming, config)
        else:
            result = adapter.handle(incoming, config)
    except NotConfigured as exc:
        log.error("webhook %s is enabled but not configured: %s", provider, exc)
        raise unavailable(f"{provider} webhooks are not configured") from None
    except WebhookError as exc:
        return error_response(exc.status, str(exc))
    except OSError as exc:
        # Fetching the SNS signing certificate failed: ours to retry, not the caller's fault.
        log.warning("webhook %s: %s", provider, exc)
        raise unavailable("a provider certificate could not be fetched; retry later") from None
    if result.once and not await run_in_threadpool(_first_use, state, provider, result):
        # Accepted before, maybe by another server process: a replay, as terse as any failure.
        return error_response(SignatureError.status, str(SignatureError()))
    counts = await record_events(state, result.events) if result.events else {}
    if result.after_commit is not None:
        try:
            await run_in_threadpool(result.after_commit)
        except Exception as exc:
            log.warning("webhook %s: post-commit step failed: %s", provider, exc)
            raise unavailable("the subscription could not be confirmed; retry later") from None
    body = result.reply if result.reply is not None else {"data": True, **counts}
    return JsonAnswer(json_bytes(body), result.headers)
