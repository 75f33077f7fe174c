"""The list-hygiene settings: their documented defaults and how each value is checked.

`services.settings` merges `DEFAULTS` into its own and calls `validate_setting()` for these
keys, so they are read and written through `GET`/`PUT /api/settings`. A value that cannot work
is refused when saved (InvalidInput naming the key and the part of it).

- `hygiene.risk`: the bounce-risk score (information only, always on). `weights` are the points
  of each factor (see `RISK_WEIGHTS`); `medium_above` / `high_above` the score above which a
  subscriber is medium / high risk; `risky_domain_min_hard` and `risky_domain_percent`: a
  recipient domain is risky when at least that many hard bounces make at least that percentage
  of the mail sent to it.
- `hygiene.sunset`: the sunset policy, off until an admin turns it on (`enabled`).
- `hygiene.reverify`: the re-verification schedule, off until enabled.
- `hygiene.segment_caps`: the frequency cap per segment.
- `hygiene.scheduler_interval_minutes`: how often the scheduler looks for due jobs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from stmails.db.models import Template
from stmails.services.errors import InvalidInput

# The points each factor adds to a subscriber's risk score (the documents' model, plus what
# stmails knows better). Inactivity and list age count their highest band only.
RISK_WEIGHTS: dict[str, int] = {
    # Days since the last open or click by a person (machine opens do not count); a
    # subscriber who never engaged counts from the day they joined.
    "inactive_30_days": 5,
    "inactive_90_days": 15,
    "inactive_180_days": 30,
    # Time on the list.
    "on_list_365_days": 10,
    "on_list_730_days": 20,
    # Per soft bounce (at most `soft_bounce_max` counted).
    "soft_bounce": 10,
    # Per hard bounce of the address, per complaint.
    "hard_bounce": 50,
    "complaint": 50,
    # The recipient domain's hard-bounce history (see `risky_domain_*`).
    "risky_domain": 15,
    # Days since the address was last verified (never: as if over 180).
    "unverified_90_days": 10,
    "unverified_180_days": 20,
    # What verification (or the offline checks) found.
    "catch_all": 10,
    "disposable": 25,
    "role": 10,
    "verify_invalid": 50,
    "verify_unknown": 10,
}

RISK_DEFAULTS: dict[str, Any] = {
    "weights": dict(RISK_WEIGHTS),
    "medium_above": 25,
    "high_above": 50,
    "soft_bounce_max": 3,
    "risky_domain_min_hard": 3,
    "risky_domain_percent": 5.0,
    # Hours between two full rescorings by the scheduler.
    "full_every_hours": 24,
}

NON_RESPONDER_ACTIONS = ("unsubscribe", "suppress", "tag")

SUNSET_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    # Days without an open or click (by a person) before the re-engagement series starts.
    "reengage_after_days": 90,
    # Days without engagement before a subscriber whose series failed is sunset.
    "sunset_after_days": 180,
    # The series: `mails` messages of the transactional template `template_id`, `spacing_days`
    # apart; a subscriber who does not open or click within `spacing_days` of the last one
    # has failed it.
    "template_id": None,
    "mails": 3,
    "spacing_days": 7,
    # What happens to a non-responder: unsubscribe from every list, suppress the address, or
    # only tag (the subscriber's `sunset` state; nothing else changes).
    "action": "tag",
    # At most this many subscribers moved per run (a safety net against a wrong setting).
    "max_per_run": 10000,
    "every_hours": 24,
}

REVERIFY_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    # Re-verify subscribers whose last verification is older than this (never: always).
    "older_than_days": 30,
    "every_hours": 24 * 30,
    # DNS questions per second across the run.
    "dns_per_second": 20.0,
    # Probe mailboxes over SMTP (off: syntax, DNS and lists only).
    "smtp_probe": False,
    # What happens to an address found invalid: none (only recorded and scored),
    # unsubscribe, suppress, or blocklist.
    "invalid_action": "none",
    "max_per_run": 50000,
}
INVALID_ACTIONS = ("none", "unsubscribe", "suppress", "blocklist")

# Per segment (`risk:high`, `engagement:inactive`, ...): at most `max` campaign mails per
# `days` days. None by default (a cap skips sends: off until an admin sets one); the
# documents suggest e.g. {"risk:high": {"max": 1, "days": 7}}.
SEGMENT_CAPS_DEFAULTS: dict[str, Any] = {}
SEGMENT_NAMES = (
    "risk:low",
    "risk:medium",
    "risk:high",
    "engagement:engaged",
    "engagement:lapsing",
    "engagement:inactive",
    "engagement:never",
)

DEFAULTS: dict[str, Any] = {
    "hygiene.risk": RISK_DEFAULTS,
    "hygiene.sunset": SUNSET_DEFAULTS,
    "hygiene.reverify": REVERIFY_DEFAULTS,
    "hygiene.segment_caps": SEGMENT_CAPS_DEFAULTS,
    "hygiene.scheduler_interval_minutes": 5,
}


def owns(key: str) -> bool:
    """Whether `key` is a hygiene setting."""
    return key in DEFAULTS


def _number(key: str, value: Any, low: float, high: float, integer: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(key, "must be a number")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise InvalidInput(key, "must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(key, f"must be between {low:g} and {high:g}")
    return int(value) if integer else float(value)


def _merged(key: str, value: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(key, "must be an object")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise InvalidInput(f"{key}.{unknown[0]}", "unknown setting")
    merged = copy.deepcopy(dict(defaults))
    merged.update(value)
    return merged


def _risk(key: str, value: Any) -> dict[str, Any]:
    merged = _merged(key, value, RISK_DEFAULTS)
    weights = merged["weights"]
    if not isinstance(weights, Mapping):
        raise InvalidInput(f"{key}.weights", "must be an object")
    unknown = sorted(set(weights) - set(RISK_WEIGHTS))
    if unknown:
        raise InvalidInput(f"{key}.weights.{unknown[0]}", "unknown factor")
    merged["weights"] = {
        name: _number(f"{key}.weights.{name}", weights.get(name, default), 0, 1000)
        for name, default in RISK_WEIGHTS.items()
    }
    for name in ("medium_above", "high_above"):
        merged[name] = _number(f"{key}.{name}", merged[name], 0, 100000)
    if merged["high_above"] < merged["medium_above"]:
        raise InvalidInput(f"{key}.high_above", "must not be below medium_above")
    merged["soft_bounce_max"] = _number(f"{key}.soft_bounce_max", merged["soft_bounce_max"], 0, 100)
    merged["risky_domain_min_hard"] = _number(
        f"{key}.risky_domain_min_hard", merged["risky_domain_min_hard"], 1, 1000000
    )
    merged["risky_domain_percent"] = _number(
        f"{key}.risky_domain_percent", merged["risky_domain_percent"], 0, 100, integer=False
    )
    merged["full_every_hours"] = _number(
        f"{key}.full_every_hours", merged["full_every_hours"], 1, 24 * 365
    )
    return merged


def _sunset(key: str, value: Any) -> dict[str, Any]:
    merged = _merged(key, value, SUNSET_DEFAULTS)
    if not isinstance(merged["enabled"], bool):
        raise InvalidInput(f"{key}.enabled", "must be true or false")
    merged["reengage_after_days"] = _number(
        f"{key}.reengage_after_days", merged["reengage_after_days"], 1, 3650
    )
    merged["sunset_after_days"] = _number(
        f"{key}.sunset_after_days", merged["sunset_after_days"], 1, 3650
    )
    if merged["sunset_after_days"] <= merged["reengage_after_days"]:
        raise InvalidInput(f"{key}.sunset_after_days", "must be after reengage_after_days")
    merged["mails"] = _number(f"{key}.mails", merged["mails"], 0, 10)
    merged["spacing_days"] = _number(f"{key}.spacing_days", merged["spacing_days"], 1, 365)
    if merged["action"] not in NON_RESPONDER_ACTIONS:
        raise InvalidInput(f"{key}.action", f"one of {', '.join(NON_RESPONDER_ACTIONS)}")
    template = merged["template_id"]
    if template is not None:
        merged["template_id"] = _number(f"{key}.template_id", template, 1, 2**31)
    if merged["enabled"] and merged["mails"] > 0 and merged["template_id"] is None:
        # A series without a template cannot be sent: refused now, not found out at 3 a.m.
        raise InvalidInput(f"{key}.template_id", "name the re-engagement template (or mails: 0)")
    merged["max_per_run"] = _number(f"{key}.max_per_run", merged["max_per_run"], 1, 10**7)
    merged["every_hours"] = _number(f"{key}.every_hours", merged["every_hours"], 1, 24 * 365)
    return merged


def _reverify(key: str, value: Any) -> dict[str, Any]:
    merged = _merged(key, value, REVERIFY_DEFAULTS)
    for flag in ("enabled", "smtp_probe"):
        if not isinstance(merged[flag], bool):
            raise InvalidInput(f"{key}.{flag}", "must be true or false")
    merged["older_than_days"] = _number(
        f"{key}.older_than_days", merged["older_than_days"], 1, 3650
    )
    merged["every_hours"] = _number(f"{key}.every_hours", merged["every_hours"], 1, 24 * 365)
    merged["dns_per_second"] = _number(
        f"{key}.dns_per_second", merged["dns_per_second"], 0.1, 1000, integer=False
    )
    if merged["invalid_action"] not in INVALID_ACTIONS:
        raise InvalidInput(f"{key}.invalid_action", f"one of {', '.join(INVALID_ACTIONS)}")
    merged["max_per_run"] = _number(f"{key}.max_per_run", merged["max_per_run"], 1, 10**7)
    return merged


def _caps(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(key, "must be an object of segment: {max, days}")
    out: dict[str, Any] = {}
    for segment, cap in value.items():
        if segment not in SEGMENT_NAMES:
            raise InvalidInput(f"{key}.{segment}", f"unknown segment ({', '.join(SEGMENT_NAMES)})")
        if not isinstance(cap, Mapping) or set(cap) != {"max", "days"}:
            raise InvalidInput(f"{key}.{segment}", "must be {max, days}")
        out[segment] = {
            "max": _number(f"{key}.{segment}.max", cap["max"], 0, 1000),
            "days": _number(f"{key}.{segment}.days", cap["days"], 1, 365),
        }
    return out


def validate_setting(key: str, value: Any) -> Any:
    """The value to store for hygiene setting `key`, normalized; InvalidInput otherwise."""
    if key == "hygiene.risk":
        return _risk(key, value)
    if key == "hygiene.sunset":
        return _sunset(key, value)
    if key == "hygiene.reverify":
        return _reverify(key, value)
    if key == "hygiene.segment_caps":
        return _caps(key, value)
    return _number(key, value, 1, 24 * 60)


def check_together(session: Session, values: Mapping[str, Any], changed: Mapping[str, Any]) -> None:
    """Refuses hygiene settings that cannot work with the rest (InvalidInput naming the key):
    a sunset series whose template is not a transactional template, an SMTP probe without a
    bounce address to probe from."""
    policy = values.get("hygiene.sunset") or {}
    template_id = policy.get("template_id")
    if "hygiene.sunset" in changed and template_id is not None:
        template = session.get(Template, template_id)
        if template is None or template.type != "tx":
            raise InvalidInput(
                "hygiene.sunset.template_id", f"no transactional template {template_id}"
            )
    reverify = values.get("hygiene.reverify") or {}
    touched = "hygiene.reverify" in changed or "sending.bounce_address" in changed
    if touched and reverify.get("smtp_probe") and not values.get("sending.bounce_address"):
        raise InvalidInput(
            "hygiene.reverify.smtp_probe",
            "needs sending.bounce_address (the MAIL FROM of the probes)",
        )
