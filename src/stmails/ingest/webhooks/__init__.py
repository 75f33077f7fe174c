"""ESP webhook adapters, one module per provider, and the registry the route looks them up in.

Each adapter turns a verified provider request into normalized `Event`s; see `base.Provider`
and docs/adding-a-provider.md.
"""

from __future__ import annotations

from stmails.ingest.webhooks.base import (
    NotConfigured,
    PayloadError,
    Provider,
    SignatureError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from stmails.ingest.webhooks.settings import PROVIDERS

__all__ = [
    "NotConfigured",
    "PayloadError",
    "Provider",
    "SignatureError",
    "WebhookError",
    "WebhookRequest",
    "WebhookResult",
    "default_registry",
]


def default_registry() -> dict[str, Provider]:
    """A fresh adapter of every provider, by name (each keeps its own caches and token memory)."""
    providers: list[Provider] = [provider() for provider in PROVIDERS]
    return {provider.name: provider for provider in providers}
