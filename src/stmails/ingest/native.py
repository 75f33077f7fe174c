"""The native bounce webhook (`POST /webhooks/bounce`): listmonk's body, extended, to an `Event`.

listmonk's fields: `subscriber_uuid` or `email` (at least one), `campaign_uuid`, `source` and
`type` (required), `meta` (an object, or an escaped JSON string as listmonk documents it).
stmails also reads `reason`, `status`, `diagnostic`, `event_id` and `created_at` (ISO 8601).
`type` is `hard`, `soft` or `complaint`. Every field is checked and bounded here, so that what
reaches `services.bounces.record()` is well formed; a bad body raises `NativeBounceError` whose
message names the field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from stmails.core.event import EVENT_TYPES, Event, EventType
from stmails.core.json_depth import MAX_JSON_DEPTH, too_deep

MAX_EMAIL = 320
MAX_SHORT = 255
MAX_DIAGNOSTIC = 4000
MAX_META_JSON = 64 * 1024

_SOURCE_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_REASON_RE = re.compile(r"[a-z0-9_]{1,64}")
_STATUS_RE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")

KNOWN_FIELDS = frozenset(
    {
        "subscriber_uuid",
        "email",
        "campaign_uuid",
        "source",
        "type",
        "meta",
        "reason",
        "status",
        "diagnostic",
        "event_id",
        "created_at",
    }
)


class NativeBounceError(ValueError):
    """The body is not an acceptable bounce; the message names the field."""


def _text(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NativeBounceError(f"{name}: must be a string")
    value = value.strip()
    if len(value) > limit:
        raise NativeBounceError(f"{name}: longer than {limit} characters")
    return value


def _uuid(body: Mapping[str, Any], name: str) -> str:
    value = _text(body, name, 64)
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NativeBounceError(f"{name}: not a UUID") from None


def _email(body: Mapping[str, Any]) -> str:
    value = _text(body, "email", MAX_EMAIL)
    if not value:
        return ""
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(value.split()) != 1:
        raise NativeBounceError("email: not an email address")
    return value


def _meta(body: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("meta")
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        if len(value) > MAX_META_JSON:
            raise NativeBounceError(f"meta: longer than {MAX_META_JSON} characters")
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise NativeBounceError(
                "meta: not a JSON object (nor an escaped JSON string)"
            ) from None
    if not isinstance(value, dict):
        raise NativeBounceError("meta: must be a JSON object")
    if too_deep(value):
        raise NativeBounceError(f"meta: nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date or timestamp (`Z` accepted) as an aware UTC datetime; naive means UTC.

    Raises ValueError when `text` is not one.
    """
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _created_at(body: Mapping[str, Any]) -> datetime | None:
    value = body.get("created_at")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise NativeBounceError("created_at: must be an ISO 8601 timestamp string")
    try:
        return parse_timestamp(value)
    except ValueError:
        raise NativeBounceError("created_at: not an ISO 8601 timestamp") from None


def parse_bounce(body: Any) -> Event:
    """The `Event` for one webhook body (a decoded JSON value); NativeBounceError if unfit."""
    if not isinstance(body, dict):
        raise NativeBounceError("body: must be a JSON object")
    source = body.get("source")
    if not isinstance(source, str) or not source.strip():
        raise NativeBounceError("source: required")
    source = source.strip()
    if not _SOURCE_RE.fullmatch(source):
        raise NativeBounceError("source: 1-64 letters, digits or _ . : -")
    kind = body.get("type")
    if kind not in EVENT_TYPES:
        raise NativeBounceError("type: required, one of hard, soft, complaint")
    event_type: EventType = kind
    email = _email(body)
    subscriber_uuid = _uuid(body, "subscriber_uuid")
    if not email and not subscriber_uuid:
        raise NativeBounceError("email: email or subscriber_uuid is required")
    reason = _text(body, "reason", 64).lower() or "undefined"
    if not _REASON_RE.fullmatch(reason):
        raise NativeBounceError("reason: lower-case letters, digits and _ only")
    status = _text(body, "status", 16)
    if status and not _STATUS_RE.fullmatch(status):
        raise NativeBounceError("status: an enhanced status code such as 5.1.1")
    return Event(
        source=source,
        type=event_type,
        email=email,
        subscriber_uuid=subscriber_uuid,
        campaign_uuid=_uuid(body, "campaign_uuid"),
        reason=reason,
        status=status,
        diagnostic=_text(body, "diagnostic", MAX_DIAGNOSTIC),
        event_id=_text(body, "event_id", MAX_SHORT),
        occurred_at=_created_at(body),
        meta=_meta(body),
    )
