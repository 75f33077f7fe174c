"""Campaign segments and per-segment frequency caps.

A campaign's segment narrows its lists' subscribers to those whose risk level, engagement level
and verification result are among the ones it names (an empty list allows every value); the
others are skipped with the reason (`segment:risk_level:high`...), like suppressed addresses.

- risk level: `low`, `medium`, `high` (services.hygiene.risk; not yet scored: `low`);
- engagement level: `engaged` (an open or click by a person in the last 30 days), `lapsing`
  (30 to 90 days), `inactive` (over 90 days), `never` (none since joining); machine opens do
  not count;
- verification result: `valid`, `risky`, `unknown`, `invalid`, or `unverified`.

`hygiene.segment_caps` caps how many campaign mails a segment's subscribers receive: e.g.
`{"risk:high": {"max": 1, "days": 7}}` skips (`frequency_cap:risk:high`) a high-risk subscriber
who was sent a campaign in the last 7 days. It applies to every campaign; empty by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    RISK_LEVELS,
    CampaignSegment,
    CampaignSend,
    Subscriber,
    SubscriberHygiene,
)
from stmails.services import settings as settings_service
from stmails.services.errors import InvalidInput
from stmails.services.hygiene.risk import last_engaged

__all__ = [
    "ENGAGEMENT_LEVELS",
    "VERIFY_RESULTS",
    "Segment",
    "engagement_level",
    "get_segment",
    "set_segment",
    "skips",
]

ENGAGEMENT_LEVELS = ("engaged", "lapsing", "inactive", "never")
VERIFY_RESULTS = ("valid", "risky", "unknown", "invalid", "unverified")


@dataclass(frozen=True)
class Segment:
    """What a campaign's segment allows (empty: everything)."""

    risk_levels: tuple[str, ...] = ()
    engagement_levels: tuple[str, ...] = ()
    verify_results: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether it allows everyone."""
        return not (self.risk_levels or self.engagement_levels or self.verify_results)

    def to_dict(self) -> dict[str, Any]:
        """For the API."""
        return {
            "risk_levels": list(self.risk_levels),
            "engagement_levels": list(self.engagement_levels),
            "verify_results": list(self.verify_results),
        }


def _values(body: Mapping[str, Any], key: str, allowed: Sequence[str]) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
        raise InvalidInput(key, f"must be a list of {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def parse_segment(body: Any) -> Segment:
    """A segment from the API's JSON; InvalidInput naming the field."""
    if not isinstance(body, Mapping):
        raise InvalidInput("segment", "must be an object")
    unknown = sorted(set(body) - {"risk_levels", "engagement_levels", "verify_results"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    return Segment(
        _values(body, "risk_levels", RISK_LEVELS),
        _values(body, "engagement_levels", ENGAGEMENT_LEVELS),
        _values(body, "verify_results", VERIFY_RESULTS),
    )


def get_segment(session: Session, campaign_id: int) -> Segment:
    """The campaign's segment (empty when it has none)."""
    row = session.get(CampaignSegment, campaign_id)
    if row is None:
        return Segment()
    return Segment(
        tuple(row.risk_levels or ()),
        tuple(row.engagement_levels or ()),
        tuple(row.verify_results or ()),
    )


def set_segment(session: Session, campaign_id: int, segment: Segment) -> Segment:
    """Stores the campaign's segment (an empty one removes it); the caller commits."""
    row = session.get(CampaignSegment, campaign_id)
    if segment.empty:
        if row is not None:
            session.delete(row)
        return segment
    if row is None:
        row = CampaignSegment(campaign_id=campaign_id)
        session.add(row)
    row.risk_levels = list(segment.risk_levels)
    row.engagement_levels = list(segment.engagement_levels)
    row.verify_results = list(segment.verify_results)
    return segment


def engagement_level(engaged: datetime | None, now: datetime) -> str:
    """The engagement level of a subscriber last engaged at `engaged` (None: never)."""
    if engaged is None:
        return "never"
    days = (now - engaged).days
    if days <= 30:
        return "engaged"
    if days <= 90:
        return "lapsing"
    return "inactive"


def _caps(session: Session) -> dict[str, tuple[int, int]]:
    value = settings_service.get_valid(session, "hygiene.segment_caps") or {}
    return {name: (int(cap["max"]), int(cap["days"])) for name, cap in value.items()}


def skips(session: Session, segment: Segment, ids: Sequence[int], now: datetime) -> dict[int, str]:
    """Why each of subscribers `ids` is left out by the segment or a frequency cap (those
    not left out are absent)."""
    caps = _caps(session)
    if not ids or (segment.empty and not caps):
        return {}
    rows = session.execute(
        select(Subscriber.id, SubscriberHygiene.risk_level, SubscriberHygiene.scored_at,
               SubscriberHygiene.verify_result)
        .outerjoin(SubscriberHygiene, SubscriberHygiene.subscriber_id == Subscriber.id)
        .where(Subscriber.id.in_(list(ids)))
    )  # fmt: skip
    risk: dict[int, str] = {}
    verified: dict[int, str] = dict.fromkeys(ids, "unverified")
    for sid, level, scored, result in rows:
        risk[sid] = level if scored is not None and level else "low"
        verified[sid] = result or "unverified"
    needs_engagement = bool(segment.engagement_levels) or any(
        name.startswith("engagement:") for name in caps
    )
    engaged: dict[int, datetime] = {}
    if needs_engagement:
        engaged = last_engaged(session.connection(), lambda column: column.in_(list(ids)))
    out: dict[int, str] = {}
    levels = {sid: engagement_level(engaged.get(sid), now) for sid in ids}
    for sid in ids:
        if segment.risk_levels and risk.get(sid, "low") not in segment.risk_levels:
            out[sid] = f"segment:risk_level:{risk.get(sid, 'low')}"
        elif segment.engagement_levels and levels[sid] not in segment.engagement_levels:
            out[sid] = f"segment:engagement:{levels[sid]}"
        elif (
            segment.verify_results and verified.get(sid, "unverified") not in segment.verify_results
        ):
            out[sid] = f"segment:verify_result:{verified.get(sid, 'unverified')}"
    for name, (most, days) in caps.items():
        kind, _, value = name.partition(":")
        members = [
            sid
            for sid in ids
            if sid not in out
            and (
                (kind == "risk" and risk.get(sid, "low") == value)
                or (kind == "engagement" and levels[sid] == value)
            )
        ]
        if not members:
            continue
        since = now - timedelta(days=days)
        counts = dict(
            session.execute(
                select(CampaignSend.subscriber_id, func.count())
                .where(
                    CampaignSend.subscriber_id.in_(members),
                    CampaignSend.status == "sent",
                    CampaignSend.sent_at >= since,
                )
                .group_by(CampaignSend.subscriber_id)
            ).all()
        )
        for sid in members:
            if counts.get(sid, 0) >= most:
                out[sid] = f"frequency_cap:{name}"
    return out
