"""The bounce rules as pure functions: no database, no session.

`decide()` takes the configured rules, the bounce at hand and the subject's earlier bounces
(as `Fact`s) and says what the bounce counts as (reason overrides, then soft-bounce
escalation), whether it adds to the count (one per campaign, or per calendar day, UTC, without
a campaign), and whether a rule is reached: the action and the suppression reason.
docs/bounces-rules.md explains the rules; recording (`recording.py`) and `reapply()` both call
`decide()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stmails.core.event import EventType
from stmails.services.settings import BounceAction, BounceConfig
from stmails.services.suppression import SuppressionReason

# Stronger actions include the weaker ones; replays keep the strongest.
ACTION_STRENGTH: dict[BounceAction, int] = {
    "none": 0,
    "unsubscribe": 1,
    "blocklist": 2,
    "delete": 3,
}


@dataclass(frozen=True, slots=True)
class Fact:
    """A bounce as the rules see it."""

    type: str
    reason: str
    count_key: str
    created_at: datetime
    effective_type: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules make of one bounce, given the bounces before it."""

    effective_type: EventType
    escalated: bool
    counted: bool
    action: BounceAction
    suppress_reason: SuppressionReason | None


def base_type(kind: str, reason: str, config: BounceConfig) -> EventType:
    """The type after reason overrides (complaints are never overridden)."""
    if kind == "complaint":
        return "complaint"
    override = config.reason_overrides.get(reason)
    if override is not None:
        return override
    return "hard" if kind == "hard" else "soft"


def count_key_of(campaign_uuid: str, occurred_at: datetime) -> str:
    """The counting unit: the campaign, else the calendar day (UTC) of the bounce."""
    if campaign_uuid:
        return campaign_uuid.lower()
    return "day:" + occurred_at.astimezone(UTC).date().isoformat()


def _in_window(fact: Fact, at: datetime, window_days: int) -> bool:
    return window_days == 0 or fact.created_at >= at - timedelta(days=window_days)


def decide(
    config: BounceConfig,
    current: Fact,
    history: Sequence[Fact],
    recent_campaigns_sent: Callable[[], Sequence[str]],
) -> Decision:
    """Apply the rules to `current`, given the subject's other bounces (`history`).

    `recent_campaigns_sent()` returns the uuids of the last campaigns sent to the subscriber
    (newest first, at most `config.escalation_count`), from the send ledger; it is called only
    when escalation is in question. Escalation: a soft bounce from a campaign is treated as hard
    when the last N campaigns sent were all soft-bounced, or, with no ledger of N sends, when
    soft bounces came from N distinct campaigns (N = `escalation_count`).
    """
    kind = base_type(current.type, current.reason, config)
    escalated = False
    n = config.escalation_count
    if kind == "soft" and n > 0 and not current.count_key.startswith("day:"):
        window = config.rules["soft"].window_days
        soft_campaigns = {current.count_key} | {
            f.count_key
            for f in history
            if base_type(f.type, f.reason, config) == "soft"
            and not f.count_key.startswith("day:")
            and _in_window(f, current.created_at, window)
        }
        if len(soft_campaigns) >= n:
            sent = [c.lower() for c in recent_campaigns_sent()][:n]
            escalated = all(c in soft_campaigns for c in sent) if len(sent) >= n else True
        if escalated:
            kind = "hard"
    rule = config.rules[kind]
    units = {
        f.count_key
        for f in history
        if f.effective_type == kind and _in_window(f, current.created_at, rule.window_days)
    }
    counted = current.count_key not in units
    reached = len(units | {current.count_key}) >= rule.count
    action: BounceAction = rule.action if reached else "none"
    suppress: SuppressionReason | None = None
    if reached and kind == "complaint":
        suppress = "complaint"
    elif reached and kind == "hard":
        suppress = "soft_bounce" if escalated else "hard_bounce"
    return Decision(kind, escalated, counted, action, suppress)
