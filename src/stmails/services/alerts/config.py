"""The alert settings: thresholds, sample sizes and the sliding window the watcher judges a
running campaign on, and where alerts are delivered. Validated when saved (PUT /api/settings).

- `deliverability.alerts` (an object; missing fields take their defaults):
  `enabled` (true), `bounce_warning` (2.0 %), `bounce_critical` (5.0 %), `domain_bounce`
  (10.0 %), `complaint` (0.1 %), `min_sample` (100 sends before the bounce rate is judged),
  `complaint_min_sample` (1,000 delivered before the complaint rate is judged),
  `domain_min_sample` (50 sends to a domain), `window_sends` (1,000: the latest sends judged),
  `window_minutes` (60: sends older than this leave the window), `pause_campaign` (true),
  `hold_scheduled` (true), `hold_domains` (true).
- `deliverability.alert_webhooks`: a list of `{"url", "secret", "enabled"}`: each alert is
  POSTed to each enabled URL, signed with HMAC-SHA256 of the body under its secret.
- `app.notify_emails` (listmonk's): addresses each alert is mailed to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stmails.services.errors import InvalidInput
from stmails.verify.syntax import Policy, check_syntax

ALERTS_KEY = "deliverability.alerts"
WEBHOOKS_KEY = "deliverability.alert_webhooks"
NOTIFY_KEY = "app.notify_emails"
MAX_WEBHOOKS = 10
MAX_NOTIFY_EMAILS = 50
MIN_SECRET_CHARS = 16


class Thresholds(BaseModel):
    """`deliverability.alerts`: percentages, sample sizes and the window."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    bounce_warning: float = Field(default=2.0, gt=0, le=100)
    bounce_critical: float = Field(default=5.0, gt=0, le=100)
    domain_bounce: float = Field(default=10.0, gt=0, le=100)
    complaint: float = Field(default=0.1, gt=0, le=100)
    min_sample: int = Field(default=100, ge=1, le=1_000_000)
    complaint_min_sample: int = Field(default=1000, ge=1, le=1_000_000)
    domain_min_sample: int = Field(default=50, ge=1, le=1_000_000)
    window_sends: int = Field(default=1000, ge=10, le=100_000)
    window_minutes: int = Field(default=60, ge=1, le=10_080)
    pause_campaign: bool = True
    hold_scheduled: bool = True
    hold_domains: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.bounce_warning >= self.bounce_critical:
            raise ValueError("bounce_warning must be below bounce_critical")
        if self.min_sample > self.window_sends:
            raise ValueError(
                "min_sample cannot exceed window_sends: the rate would never be judged"
            )
        if self.complaint_min_sample > self.window_sends:
            raise ValueError(
                "complaint_min_sample cannot exceed window_sends: the rate would never be judged"
            )
        return self


class Webhook(BaseModel):
    """One URL of `deliverability.alert_webhooks`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=500)
    enabled: bool = True


DEFAULTS: dict[str, Any] = {
    ALERTS_KEY: Thresholds().model_dump(),
    WEBHOOKS_KEY: [],
    NOTIFY_KEY: [],
}


def _first_error(key: str, exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(f"{key}.{where}" if where else key, message)


def validate_setting(key: str, value: Any) -> Any:
    """The value to store for one of this module's keys; InvalidInput naming what is wrong."""
    if key == ALERTS_KEY:
        if not isinstance(value, Mapping):
            raise InvalidInput(key, "must be an object")
        merged = {**copy.deepcopy(DEFAULTS[key]), **value}
        try:
            return Thresholds.model_validate(merged).model_dump()
        except ValidationError as exc:
            raise _first_error(key, exc) from None
    if key == WEBHOOKS_KEY:
        if not isinstance(value, list) or len(value) > MAX_WEBHOOKS:
            raise InvalidInput(key, f"must be a list of at most {MAX_WEBHOOKS} webhooks")
        out = []
        for index, item in enumerate(value):
            try:
                hook = Webhook.model_validate(item)
            except ValidationError as exc:
                raise _first_error(f"{key}.{index}", exc) from None
            parts = urlsplit(hook.url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInput(f"{key}.{index}.url", "must be an http(s) URL with a host")
            if len(hook.secret) < MIN_SECRET_CHARS:
                raise InvalidInput(
                    f"{key}.{index}.secret", f"must be at least {MIN_SECRET_CHARS} characters"
                )
            out.append({"url": hook.url.strip(), "secret": hook.secret, "enabled": hook.enabled})
        return out
    if key == NOTIFY_KEY:
        if not isinstance(value, list) or len(value) > MAX_NOTIFY_EMAILS:
            raise InvalidInput(key, f"must be a list of at most {MAX_NOTIFY_EMAILS} addresses")
        emails = []
        for index, item in enumerate(value):
            parsed = (
                check_syntax(str(item).strip(), Policy.MAILING) if isinstance(item, str) else None
            )
            if parsed is None or not parsed.valid or parsed.normalized is None:
                raise InvalidInput(f"{key}.{index}", "not a valid address")
            emails.append(parsed.normalized)
        return list(dict.fromkeys(emails))
    raise KeyError(key)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Everything the watcher and the delivery worker read, in one go."""

    thresholds: Thresholds
    webhooks: tuple[Webhook, ...]
    notify_emails: tuple[str, ...]


def config_from(values: Mapping[str, Any]) -> AlertConfig:
    """The alert configuration of a settings mapping; stored values that no longer validate
    fall back to their defaults (a bad row never stops the watcher)."""

    def valid(key: str) -> Any:
        try:
            return validate_setting(key, values.get(key, DEFAULTS[key]))
        except InvalidInput:
            return copy.deepcopy(DEFAULTS[key])

    return AlertConfig(
        thresholds=Thresholds.model_validate(valid(ALERTS_KEY)),
        webhooks=tuple(Webhook.model_validate(w) for w in valid(WEBHOOKS_KEY)),
        notify_emails=tuple(valid(NOTIFY_KEY)),
    )
