"""Run-time settings kept in the `settings` table, under listmonk's keys, with typed access.

Keys and shapes follow listmonk's settings API (`bounce.enabled`, `bounce.actions`, `smtp`, ...)
so that its clients can read and write them; stmails' additions sit beside them in the same style:

- `bounce.actions.<type>.window_days`: count only bounces of the last N days (0 = all time).
- `bounce.soft_escalation`: `{"enabled": true, "count": 3}`: after `count` consecutive soft
  bounces from distinct campaigns, the address is treated as a hard bounce.
- `bounce.reason_overrides`: `{"<reason>": "soft" | "hard"}`: a bounce with that reason counts
  as that type whatever its status code said (default: `mailboxfull` is soft).
- `bounce.mailbox_trust`: `"verp"` | `"sent"` (default) | `"any"`: what a bounce read from a
  bounce mailbox must show before it may act (unsubscribe, blocklist, suppress): a valid VERP
  token; or that, or a Message-ID of mail stmails sent; or nothing. Others are only recorded.
- `verify.on_subscribe`: `"off"` (default) | `"flag"` | `"reject"`: whether subscriber creation
  and the CSV import verify addresses on the way in (see `services.intake`).
- `verify.reject`: the verification reason codes that refuse an address under `"reject"`
  (default `["syntax", "disposable"]`); other findings are only flagged.
- the media library's `upload.*` keys (listmonk's): validated by `services.media.config`.
- `privacy.individual_tracking`, `privacy.disable_tracking` (listmonk's): opens and clicks
  recorded per subscriber, or not at all (see `services.tracking`).
- `deliverability.alerts`, `deliverability.alert_webhooks` and `app.notify_emails`: the
  deliverability watcher's thresholds and where alerts go (`services.alerts.config`).
- the list-hygiene keys (`hygiene.*`): risk-score weights, sunset policy, re-verification,
  segment caps; validated by `services.hygiene.config`.
- the sending keys (`smtp`, `app.*`, `sending.*`, `relay.sender_domains`): validated by
  `services.sending.config`, so that settings that cannot work are refused when saved.

Secrets read as MASK. Writing MASK (or an empty string) back keeps the stored secret, but only
while the object it belongs to still points where it did (host, port, TLS; `SECRET_TARGETS`):
otherwise whoever may change settings could send the stored password to a server of their own.

Unlike listmonk, bounce processing and the bounce webhook are on by default; provider webhooks and
mailboxes stay off until configured. A key missing from the table reads as its default here.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from stmails.core.event import EVENT_TYPES, EventType
from stmails.db.models import Setting
from stmails.db.prepared import Prepared
from stmails.db.types import utcnow
from stmails.ingest.mailbox.config import MailboxConfig, MailboxConfigError
from stmails.ingest.webhooks import settings as webhook_settings
from stmails.services import public_settings
from stmails.services.alerts import config as alert_config
from stmails.services.errors import InvalidInput
from stmails.services.hygiene import config as hygiene_config
from stmails.services.media import config as media_config
from stmails.services.sending import config as sending_config
from stmails.services.validation import setting_check
from stmails.verify.result import Reason

BounceAction = Literal["none", "unsubscribe", "blocklist", "delete"]
BOUNCE_ACTIONS: tuple[BounceAction, ...] = ("none", "unsubscribe", "blocklist", "delete")
MailboxTrust = Literal["verp", "sent", "any"]
MAILBOX_TRUST: tuple[MailboxTrust, ...] = ("verp", "sent", "any")

# What a masked secret reads as through the API (listmonk's convention); writing it back, or an
# empty string, keeps the stored secret.
MASK = "••••••••"

DEFAULT_SMTP_SERVER: dict[str, Any] = {
    "uuid": "",
    "name": "",
    "enabled": True,
    "host": "127.0.0.1",
    "hello_hostname": "",
    "port": 25,
    "auth_protocol": "none",
    "username": "",
    "password": "",
    "email_headers": [],
    "max_conns": 10,
    "max_msg_retries": 2,
    "idle_timeout": "15s",
    "wait_timeout": "5s",
    "tls_type": "STARTTLS",
    "tls_skip_verify": False,
}

DEFAULTS: dict[str, Any] = {
    "bounce.enabled": True,
    "bounce.webhooks_enabled": True,
    "bounce.actions": {
        "soft": {"count": 2, "action": "none", "window_days": 0},
        "hard": {"count": 1, "action": "blocklist", "window_days": 0},
        "complaint": {"count": 1, "action": "blocklist", "window_days": 0},
    },
    "bounce.soft_escalation": {"enabled": True, "count": 3},
    "bounce.reason_overrides": {"mailboxfull": "soft"},
    "bounce.mailboxes": [],
    "bounce.mailbox_trust": "sent",
    # ESP webhooks: each provider module declares its keys (stmails.ingest.webhooks.<name>).
    **webhook_settings.defaults(),
    "smtp": [DEFAULT_SMTP_SERVER],
    "verify.on_subscribe": "off",
    "verify.reject": ["syntax", "disposable"],
    **media_config.DEFAULTS,
    # listmonk's privacy keys, read by services.tracking.
    "privacy.individual_tracking": False,
    "privacy.disable_tracking": False,
    **sending_config.DEFAULTS,
}

# The subscriber-facing pages' settings (services.public_settings).
DEFAULTS.update(public_settings.DEFAULTS)
# Deliverability alerts: thresholds, webhooks, notify addresses (services.alerts.config).
DEFAULTS.update(alert_config.DEFAULTS)
# The list-hygiene settings (services.hygiene.config).
DEFAULTS.update(hygiene_config.DEFAULTS)

VerifyMode = Literal["off", "flag", "reject"]
VERIFY_MODES: tuple[VerifyMode, ...] = ("off", "flag", "reject")

# Where secrets are inside values: a top-level key whose value is the secret, or a key whose
# value is an object (or a list of objects) holding secret fields.
SECRET_KEYS = {*webhook_settings.secret_keys(), *media_config.SECRET_KEYS}
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    **webhook_settings.secret_fields(),
    "bounce.mailboxes": ("password", "oauth_token"),
    "smtp": ("password",),
    alert_config.WEBHOOKS_KEY: ("secret",),
}
# The fields that say where an object's secrets are sent: a masked secret is kept only while
# they stay the same.
SECRET_TARGETS: dict[str, tuple[str, ...]] = {
    "smtp": ("host", "port", "tls_type", "tls_skip_verify", "auth_protocol"),
    "bounce.mailboxes": (
        "type",
        "host",
        "port",
        "tls_mode",
        "tls_enabled",
        "tls_skip_verify",
        "ca_file",
        "auth_protocol",
    ),
    alert_config.WEBHOOKS_KEY: ("url",),
}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=1000)
    action: BounceAction
    window_days: int = Field(default=0, ge=0, le=3650)


class _Actions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    soft: _Rule
    hard: _Rule
    complaint: _Rule


class _Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    count: int = Field(ge=1, le=100)


# Validators of the keys whose shape stmails relies on; other keys are stored as given.
_VALIDATORS: dict[str, Any] = {
    "bounce.actions": _Actions,
    "bounce.soft_escalation": _Escalation,
}
_BOOLEAN_KEYS = {
    "bounce.enabled",
    "bounce.webhooks_enabled",
    *(p.settings.enabled_key for p in webhook_settings.PROVIDERS if p.settings.enabled_key),
    "privacy.individual_tracking",
    "privacy.disable_tracking",
}
_REASON_CODES = tuple(reason.value for reason in Reason)


def _reason_codes(codes: list[str]) -> list[str]:
    if not set(codes) <= set(_REASON_CODES):
        raise ValueError("unknown reason code")
    return list(dict.fromkeys(codes))


# The keys whose refusals say one thing: each value validated strictly by its type.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **{key: setting_check(bool, "must be true or false") for key in _BOOLEAN_KEYS},
    "bounce.reason_overrides": setting_check(
        dict[str, Literal["soft", "hard"]], 'must map reasons to "soft" or "hard"'
    ),
    "bounce.mailbox_trust": setting_check(MailboxTrust, f"one of {', '.join(MAILBOX_TRUST)}"),
    "verify.on_subscribe": setting_check(VerifyMode, f"one of {', '.join(VERIFY_MODES)}"),
    "verify.reject": setting_check(
        Annotated[list[str], AfterValidator(_reason_codes)],
        f"must be a list of reason codes ({', '.join(_REASON_CODES)})",
    ),
}


class SettingsError(InvalidInput):
    """A setting value was refused; `field` names the setting (and the part of it)."""


def validate(key: str, value: Any) -> Any:
    """The value to store for `key`, normalized; raises SettingsError when it is invalid."""
    if public_settings.owns(key):
        try:
            return public_settings.validate(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    if hygiene_config.owns(key):
        try:
            return hygiene_config.validate_setting(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    check = _CHECKS.get(key)
    if check is not None:
        try:
            return check(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    if key == "bounce.actions":
        merged = copy.deepcopy(DEFAULTS[key])
        if not isinstance(value, Mapping):
            raise SettingsError(key, "must be an object with soft, hard and complaint rules")
        for kind, rule in value.items():
            if kind not in merged or not isinstance(rule, Mapping):
                raise SettingsError(key, f"unknown bounce type {kind!r}")
            merged[kind].update(rule)
        value = merged
    if key == "bounce.mailboxes":
        return _mailboxes(value)
    if key in alert_config.DEFAULTS:
        try:
            return alert_config.validate_setting(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    if key in media_config.DEFAULTS:
        try:
            return media_config.validate_setting(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    if key in sending_config.VALIDATORS:
        try:
            return sending_config.validate_setting(key, value)
        except InvalidInput as exc:
            raise SettingsError(exc.field, exc.message) from None
    validator = _VALIDATORS.get(key)
    if validator is not None:
        try:
            return validator.model_validate(value).model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SettingsError(f"{key}.{where}" if where else key, first["msg"]) from None
    return value


def _mailboxes(value: Any) -> list[Any]:
    """`bounce.mailboxes`: a list of entries each of which can work (ingest.mailbox.config);
    an entry that cannot is refused naming it (`bounce.mailboxes[1]`)."""
    if not isinstance(value, list):
        raise SettingsError("bounce.mailboxes", "must be a list of mailboxes")
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise SettingsError(f"bounce.mailboxes[{index}]", "must be an object")
        try:
            MailboxConfig.from_setting(entry, index)
        except (MailboxConfigError, TypeError, ValueError) as exc:
            raise SettingsError(f"bounce.mailboxes[{index}]", str(exc)) from None
    return list(value)


def get(session: Session, key: str) -> Any:
    """The value of `key`: stored, else its default (a copy), else None."""
    row = session.get(Setting, key)
    if row is not None:
        return row.value
    return copy.deepcopy(DEFAULTS.get(key))


def get_valid(session: Session, key: str) -> Any:
    """The value of `key`, or its default when the stored value no longer validates (so a bad
    row never stops the work that reads it)."""
    return _valid_or_default(key, {key: get(session, key)})


def get_all(session: Session) -> dict[str, Any]:
    """Every setting: the defaults overlaid with what is stored (secrets in clear)."""
    values = copy.deepcopy(DEFAULTS)
    for row in session.scalars(select(Setting)):
        values[row.key] = row.value
    return values


def set_value(session: Session, key: str, value: Any, *, now: datetime | None = None) -> Any:
    """Validate and store one setting (caller commits); returns the stored value."""
    stored = validate(key, value)
    forget(session, "bounce_config")
    forget(session, "tracking_config")
    forget(session, "hygiene.risk")
    forget(session, "alert_config")
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=stored, updated_at=now or utcnow()))
    else:
        row.value = stored
        row.updated_at = now or utcnow()
    return stored


def update(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Store several settings at once (PUT /api/settings); masked or empty secrets are kept.

    Every value is validated before any is stored, so a bad request changes nothing. Returns
    all settings afterwards, in clear.
    """
    current = get_all(session)
    prepared = {
        key: validate(key, _keep_secrets(key, value, current.get(key)))
        for key, value in values.items()
    }
    try:
        media_config.check_together({**current, **prepared})
        sending_config.check_together({**current, **prepared})
        hygiene_config.check_together(session, {**current, **prepared}, prepared)
    except InvalidInput as exc:
        raise SettingsError(exc.field, exc.message) from None
    _check_together({**current, **prepared}, prepared)
    for key, value in prepared.items():
        set_value(session, key, value)
    return get_all(session)


def _check_together(values: Mapping[str, Any], changed: Mapping[str, Any]) -> None:
    """Refuse a change that makes two settings unworkable together (naming the one changed)."""
    touched = "bounce.mailbox_trust" in changed or "sending.verp" in changed
    if not touched or values.get("bounce.mailbox_trust") != "verp" or values.get("sending.verp"):
        return
    field = "bounce.mailbox_trust" if "bounce.mailbox_trust" in changed else "sending.verp"
    raise SettingsError(
        field,
        "bounce.mailbox_trust verp needs sending.verp on: without VERP tokens, no bounce from "
        "a mailbox could act",
    )


def masked(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `values` with every non-empty secret replaced by MASK, for reading out."""
    out = copy.deepcopy(dict(values))
    for key in SECRET_KEYS:
        if out.get(key):
            out[key] = MASK
    for key, fields in SECRET_FIELDS.items():
        for item in _objects(out.get(key)):
            for name in fields:
                if item.get(name):
                    item[name] = MASK
    return out


def _objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and (value == "" or set(value) == {"•"})


def _keep_secrets(key: str, new: Any, old: Any) -> Any:
    """`new` with masked or empty secrets replaced by the stored ones (`old`), where the
    object still points where it did (`SECRET_TARGETS`); elsewhere they become empty."""
    if key in SECRET_KEYS:
        return old if _is_placeholder(new) else new
    if not SECRET_FIELDS.get(key):
        return new
    new = copy.deepcopy(new)
    olds = _objects(old)
    # Objects in lists are matched by uuid when they have one, else by position.
    by_uuid = {o.get("uuid"): o for o in olds if o.get("uuid")}
    for index, item in enumerate(_objects(new)):
        previous = by_uuid.get(item.get("uuid")) if item.get("uuid") else None
        if previous is None and index < len(olds):
            previous = olds[index]
        _fill_secrets(key, item, previous)
    return new


def with_stored_secrets(key: str, item: Mapping[str, Any], stored: Any) -> dict[str, Any]:
    """One object of setting `key` (an SMTP server to test, say) with its masked or empty
    secrets taken from the stored object of the same uuid, only while it points where the
    stored one does (`SECRET_TARGETS`); otherwise they stay empty."""
    filled = copy.deepcopy(dict(item))
    uuid = filled.get("uuid")
    previous = next((o for o in _objects(stored) if uuid and o.get("uuid") == uuid), None)
    _fill_secrets(key, filled, previous)
    return filled


def _fill_secrets(key: str, item: dict[str, Any], previous: Mapping[str, Any] | None) -> None:
    if previous is not None and not same_target(key, item, previous):
        previous = None
    for name in SECRET_FIELDS.get(key, ()):
        if _is_placeholder(item.get(name)):
            item[name] = previous.get(name, "") if previous else ""


# What a missing or empty target field means (listmonk's SMTP defaults).
_TARGET_DEFAULTS: dict[str, dict[str, Any]] = {
    "smtp": {"port": 25, "tls_type": "none", "tls_skip_verify": False, "auth_protocol": "none"},
}


def same_target(key: str, new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether two versions of an object of setting `key` send its secrets to the same place."""
    defaults = _TARGET_DEFAULTS.get(key, {})

    def norm(item: Mapping[str, Any], name: str) -> str:
        value = item.get(name)
        if value is None or value == "":
            value = defaults.get(name, "")
        return str(value).strip().lower()

    return all(norm(new, f) == norm(old, f) for f in SECRET_TARGETS.get(key, ()))


@dataclass(frozen=True, slots=True)
class BounceRule:
    """What to do when a subscriber has `count` bounces of one type within `window_days`."""

    count: int
    action: BounceAction
    window_days: int = 0


@dataclass(frozen=True, slots=True)
class BounceConfig:
    """The bounce settings that `services.bounces` applies, read in one go."""

    enabled: bool
    rules: Mapping[EventType, BounceRule]
    # 0 turns soft-bounce escalation off.
    escalation_count: int
    reason_overrides: Mapping[str, EventType]
    # What a bounce from a mailbox must show to act (see `bounce.mailbox_trust`).
    mailbox_trust: MailboxTrust = "sent"

    def max_window_days(self) -> int:
        """The longest window of any rule (0 when any rule counts all time)."""
        windows = [rule.window_days for rule in self.rules.values()]
        return 0 if 0 in windows else max(windows)


_BOUNCE_CONFIG_KEYS = (
    "bounce.enabled",
    "bounce.actions",
    "bounce.soft_escalation",
    "bounce.reason_overrides",
    "bounce.mailbox_trust",
)


# Plain equalities rather than IN: the statement then needs no re-rendering per execution.
_BOUNCE_CONFIG_ROWS = select(Setting.key, Setting.value).where(
    or_(*(Setting.key == key for key in _BOUNCE_CONFIG_KEYS))
)
_BOUNCE_CONFIG_PREPARED = Prepared(_BOUNCE_CONFIG_ROWS)


def bounce_config(session: Session) -> BounceConfig:
    """The bounce rules in force (one query). Stored values that no longer validate fall back
    to their defaults, so a bad row never stops bounces from being recorded."""
    return _config_of(session.execute(_BOUNCE_CONFIG_ROWS))


def cached_bounce_config(session: Session) -> BounceConfig:
    """`bounce_config()`, read once per transaction of `session` (for batches of bounces).

    It reads through the session's connection, without the ORM's autoflush (the bounce writer
    runs it once per batch, where SQLAlchemy's per-statement work would cost more than the
    query); a caller with pending changes to the settings flushes them first."""
    return per_transaction(
        session,
        "bounce_config",
        lambda: _config_of(_BOUNCE_CONFIG_PREPARED.rows(session.connection())),
    )


def _config_of(rows: Iterable[Any]) -> BounceConfig:
    return _config_from(json.dumps({key: value for key, value in rows}, sort_keys=True))


@functools.lru_cache(maxsize=16)
def _config_from(stored_json: str) -> BounceConfig:
    stored = json.loads(stored_json)
    enabled, actions, escalation, overrides, trust = (
        _valid_or_default(key, stored) for key in _BOUNCE_CONFIG_KEYS
    )
    rules: dict[EventType, BounceRule] = {
        kind: BounceRule(
            count=int(actions[kind]["count"]),
            action=actions[kind]["action"],
            window_days=int(actions[kind].get("window_days", 0)),
        )
        for kind in EVENT_TYPES
    }
    return BounceConfig(
        enabled=bool(enabled),
        rules=MappingProxyType(rules),
        escalation_count=int(escalation["count"]) if escalation["enabled"] else 0,
        reason_overrides=MappingProxyType({str(r): t for r, t in overrides.items()}),
        mailbox_trust=trust,
    )


T = TypeVar("T")
_PER_TRANSACTION = "stmails.per_transaction"


def per_transaction(session: Session, name: str, compute: Callable[[], T]) -> T:
    """`compute()`'s value, remembered under `name` until `session`'s transaction ends.

    Starts the transaction if needed. Writers of what is remembered call `forget()`.
    """
    session.connection()
    transaction = session.get_transaction()
    slots: dict[str, tuple[Any, Any]] = session.info.setdefault(_PER_TRANSACTION, {})
    entry = slots.get(name)
    if entry is not None and entry[0] is transaction:
        value: T = entry[1]
        return value
    value = compute()
    slots[name] = (transaction, value)
    return value


def forget(session: Session, name: str) -> None:
    """Drop what `per_transaction` remembers under `name` for `session`."""
    session.info.get(_PER_TRANSACTION, {}).pop(name, None)


def _valid_or_default(key: str, stored: Mapping[str, Any]) -> Any:
    if key not in stored:
        return copy.deepcopy(DEFAULTS[key])
    try:
        return validate(key, stored[key])
    except SettingsError:
        return copy.deepcopy(DEFAULTS[key])


def settings_version(session: Session) -> tuple[int, Any]:
    """A value that changes whenever a setting is saved or deleted (the number of rows and the
    latest change): long-running loops in other processes poll it to notice new settings."""
    row = session.execute(select(func.count(), func.max(Setting.updated_at))).one()
    return int(row[0]), row[1]
