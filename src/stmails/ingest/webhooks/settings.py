"""Which providers are enabled, and with what secrets, from the `bounce.*` settings.

Each provider module declares its own settings (`Provider.settings`: key, defaults, secret
fields); this module gathers them for the registry and for services.settings, which builds
its defaults and masking tables from `defaults()`, `secret_fields()` and `secret_keys()`.

listmonk's keys are honoured as they are: `bounce.ses_enabled`, `bounce.sendgrid_enabled` +
`bounce.sendgrid_key`, `bounce.postmark` and `bounce.forwardemail` objects with `enabled`.
stmails adds `bounce.ses` (`topic_arns`, `auto_confirm`, `signing_cert_pem`) and one object per
other provider, `bounce.<name>` with `enabled` and the keys its module documents
(`bounce.mailgun`, `bounce.sparkpost`, `bounce.brevo`, `bounce.mailjet`, `bounce.resend`,
`bounce.azure`, `bounce.lettermint`); `bounce.sendgrid` may add `tolerance_seconds`.
"""

from __future__ import annotations

import copy
from typing import Any

from stmails.ingest.webhooks.azure import AzureProvider
from stmails.ingest.webhooks.base import Provider, SettingLookup
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
    "PROVIDERS",
    "SettingLookup",
    "defaults",
    "provider_config",
    "secret_fields",
    "secret_keys",
]

# Every provider, in the order their settings are listed.
PROVIDERS: tuple[type[Provider], ...] = (
    PostmarkProvider,
    ForwardEmailProvider,
    SesProvider,
    SendGridProvider,
    MailgunProvider,
    SparkPostProvider,
    BrevoProvider,
    MailjetProvider,
    ResendProvider,
    AzureProvider,
    LettermintProvider,
)
_BY_NAME = {provider.name: provider for provider in PROVIDERS}


def provider_config(lookup: SettingLookup, name: str) -> dict[str, Any] | None:
    """The settings of provider `name`, or None when it is disabled (or unknown)."""
    provider = _BY_NAME.get(name)
    return provider.config_from(lookup) if provider is not None else None


def defaults() -> dict[str, Any]:
    """The default of every provider setting key (listmonk's flat keys first)."""
    values: dict[str, Any] = {}
    for provider in PROVIDERS:
        values.update(copy.deepcopy(dict(provider.settings.flat_defaults)))
    for provider in PROVIDERS:
        if provider.settings.default is not None:
            values[provider.settings.key] = copy.deepcopy(dict(provider.settings.default))
    return values


def secret_fields() -> dict[str, tuple[str, ...]]:
    """The secret fields of each provider's settings object that has any."""
    return {p.settings.key: p.settings.secret_fields for p in PROVIDERS if p.settings.secret_fields}


def secret_keys() -> set[str]:
    """The flat setting keys whose whole value is a provider's secret."""
    return {key for provider in PROVIDERS for key in provider.settings.secret_keys}
