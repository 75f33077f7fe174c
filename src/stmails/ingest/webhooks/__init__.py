"""ESP webhook adapters, one module per provider, and the registry the route looks them up in.

Each adapter turns a verified provider request into normalized `Event`s; see `base.Provider`
and docs/adding-a-provider.md.
"""

from __future__ import annotations

from stmails.ingest.webhooks.azure import AzureProvider
from stmails.ingest.webhooks.base import (
    NotConfigured,
    PayloadError,
    Provider,
    SignatureError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from stmails.ingest.webhooks.brevo import BrevoProvider
from stmails.ingest.webhooks.forwardemail import ForwardEmailProvider
from stmails.ingest.webhooks.lettermint import LettermintProvider
from stmails.ingest.webhooks.mailgun import MailgunProvider
from stmails.ingest.webhooks.mailjet import MailjetProvider
from stmails.ingest.webhooks.postmark import PostmarkProvider
from stmails.ingest.webhooks.resend import ResendProvider
from stmails.ingest.webhooks.sendgrid import SendGridProvider
from stmails.ingest.webhooks.ses import SesProvider
from stmails.ingest.webhooks.sparkpost import SparkPostProvider

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
    providers: list[Provider] = [
        SesProvider(),
        SendGridProvider(),
        PostmarkProvider(),
        ForwardEmailProvider(),
        MailgunProvider(),
        SparkPostProvider(),
        BrevoProvider(),
        MailjetProvider(),
        ResendProvider(),
        AzureProvider(),
        LettermintProvider(),
    ]
    return {provider.name: provider for provider in providers}
