"""Which providers are enabled, and with what secrets, from the `bounce.*` settings.

listmonk's keys are honoured as they are: `bounce.ses_enabled`, `bounce.sendgrid_enabled` +
`bounce.sendgrid_key`, `bounce.postmark` and `bounce.forwardemail` objects with `enabled`.
stmails adds `bounce.ses` (`topic_arns`, `auto_confirm`, `signing_cert_pem`) and one object per
other provider, `bounce.<name>` with `enabled` and the keys its module documents
(`bounce.mailgun`, `bounce.sparkpost`, `bounce.brevo`, `bounce.mailjet`, `bounce.resend`,
`bounce.azure`); `bounce.sendgrid` may add `tolerance_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

SettingLookup = Callable[[str], Any]


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def provider_config(lookup: SettingLookup, name: str) -> dict[str, Any] | None:
    """The settings of provider `name`, or None when it is disabled (or unknown)."""
    if name == "ses":
        return _object(lookup("bounce.ses")) if lookup("bounce.ses_enabled") is True else None
    if name == "sendgrid":
        if lookup("bounce.sendgrid_enabled") is not True:
            return None
        config = _object(lookup("bounce.sendgrid"))
        config.setdefault("key", lookup("bounce.sendgrid_key") or "")
        return config
    config = _object(lookup(f"bounce.{name}"))
    return config if config.get("enabled") is True else None
