"""`record_batch()`: `services.bounces.record()` for many events, with the reads done per batch.

The result is the same as calling `bounces.record(session, event, now=now, config=config)` for
each event in order, in one transaction; it only does the reads once per batch instead of once
per event. The rules themselves are not repeated here: every decision is `bounces.decide()`, and
every event that leads to an action, a suppression, an escalation check or anything unusual
(an erased address, a field past its column size) goes through `bounces.record()` itself, as do
all later events of the same subject in the batch. What remains on the batched path is the
common case: a bounce that is stored and counted but reaches no rule.

Per batch: one query for known dedup keys, one for the subscribers (locked on PostgreSQL, as
`record()` locks them), one for campaigns, one for erased addresses, one for the subjects'
history, and one multi-row INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, or_, select
from sqlalchemy.orm import Session

from stmails.core.event import EVENT_TYPES, Event, EventType
from stmails.db.models import Bounce, Campaign, Subscriber, Suppression
from stmails.db.types import email_hash, normalize_email, utcnow
from stmails.services import bounces
from stmails.services.bounces import Fact, RecordError, RecordResult
from stmails.services.settings import BounceConfig, bounce_config

BatchOutcome = RecordResult | RecordError


class _NeedsRecord(Exception):
    """The event needs `bounces.record()` (escalation would read the send ledger)."""


@dataclass(slots=True)
class _Pending:
    """A bounce row waiting for the batch INSERT, and the caller it answers."""

    index: int
    row: dict[str, Any]
    subscriber_id: int | None
    counted: bool
    effective_type: str


def _column_limits() -> dict[str, int]:
    table = Bounce.__table__
    assert isinstance(table, Table)
    limits = {"subscriber_uuid": 36}
    for name in ("email", "campaign_uuid", "reason", "status", "replycode", "feedback_type"):
        length = getattr(table.c[name].type, "length", None)
        limits[name] = int(length) if isinstance(length, int) else 0
    limits["source"] = int(getattr(table.c["source"].type, "length", 0) or 0)
    return limits


_LIMITS = _column_limits()


def _fits(event: Event) -> bool:
    """True for an event record() accepts as it is (else record() reports the field)."""
    if any(limit and len(getattr(event, name)) > limit for name, limit in _LIMITS.items()):
        return False
    return (
        event.type in EVENT_TYPES
        and bool(event.source.strip())
        and bool(event.email.strip() or event.subscriber_uuid.strip())
        and (not event.email.strip() or "@" in event.email)
    )


def _event_type(value: str) -> EventType:
    for kind in EVENT_TYPES:
        if value == kind:
            return kind
    raise ValueError(f"unknown bounce type {value!r}")


def record_batch(
    session: Session,
    events: Sequence[Event],
    *,
    now: datetime | None = None,
    config: BounceConfig | None = None,
) -> list[BatchOutcome]:
    """Record `events` in order in the caller's transaction (it commits); one outcome each.

    An event `record()` refuses gives its RecordError in its place; any other error propagates
    (the caller rolls back and may retry the events one by one).
    """
    now = now or utcnow()
    config = config or bounce_config(session)
    outcomes: list[BatchOutcome | None] = [None] * len(events)
    keys = [event.dedup_key() for event in events]
    existing = _existing(session, keys)
    subscribers = _subscribers(session, events, lock=config.enabled)
    campaigns = _campaigns(session, events)
    occurred = [_occurred(event, now) for event in events]
    addresses: list[str] = []
    found: list[Subscriber | None] = []
    for event in events:
        subscriber = subscribers.get(("uuid", event.subscriber_uuid.strip().lower()))
        if subscriber is None and event.email.strip():
            subscriber = subscribers.get(("email", normalize_email(event.email)))
        found.append(subscriber)
        address = normalize_email(event.email) or (subscriber.email.lower() if subscriber else "")
        addresses.append(address)
    hashes = [email_hash(a) if a else "" for a in addresses]
    erased = _erased(session, [h for h, s in zip(hashes, found, strict=True) if h and s is None])
    history = _history(session, found, hashes, config, min(occurred, default=now))

    pending: list[_Pending] = []
    seen: set[str] = set()
    dirty: set[tuple[str, object]] = set()

    def flush() -> None:
        if not pending:
            return
        # Rows come back in any order; each is matched to its event by its unique dedup key.
        returned = session.execute(
            insert(Bounce).returning(Bounce.dedup_key, Bounce.id), [p.row for p in pending]
        )
        ids = {key: bounce_id for key, bounce_id in returned}
        for item in pending:
            bounce_id = ids[item.row["dedup_key"]]
            outcomes[item.index] = RecordResult(
                bounce_id=bounce_id,
                duplicate=False,
                subscriber_id=item.subscriber_id,
                counted=item.counted,
                action_taken="none",
                suppressed=False,
                effective_type=_event_type(item.effective_type),
            )
        pending.clear()

    def via_record(index: int) -> None:
        seen.add(keys[index])
        flush()
        try:
            outcomes[index] = bounces.record(session, events[index], now=now, config=config)
        except RecordError as exc:
            outcomes[index] = exc

    for index, event in enumerate(events):
        key = keys[index]
        subscriber = found[index]
        subject: tuple[str, object] = (
            ("subscriber", subscriber.id) if subscriber else ("hash", hashes[index])
        )
        if key in existing:
            outcomes[index] = existing[key]
            continue
        if key in seen or subject in dirty or not _fits(event) or hashes[index] in erased:
            # A repeat within the batch, a subject record() already changed, or an unusual
            # event: record() itself handles it (and sees everything flushed so far).
            via_record(index)
            dirty.add(subject)
            continue
        campaign_uuid = event.campaign_uuid.strip().lower()
        fact = Fact(
            type=event.type,
            reason=event.reason or "undefined",
            count_key=bounces.count_key_of(event.campaign_uuid.strip(), occurred[index]),
            created_at=occurred[index],
            effective_type=bounces.base_type(event.type, event.reason, config),
        )
        decided_type = fact.effective_type
        counted = False
        if config.enabled and (hashes[index] or subscriber is not None):
            try:
                decision = bounces.decide(config, fact, history.get(subject, []), _needs_record)
            except _NeedsRecord:
                via_record(index)
                dirty.add(subject)
                continue
            if decision.action != "none" or decision.suppress_reason is not None:
                via_record(index)
                dirty.add(subject)
                continue
            decided_type = decision.effective_type
            counted = decision.counted
            history.setdefault(subject, []).append(
                Fact(fact.type, fact.reason, fact.count_key, fact.created_at, decided_type)
            )
        seen.add(key)
        pending.append(
            _Pending(
                index,
                {
                    "subscriber_id": subscriber.id if subscriber else None,
                    "email": addresses[index],
                    "email_hash": hashes[index],
                    "campaign_id": campaigns.get(campaign_uuid) if campaign_uuid else None,
                    "campaign_uuid": campaign_uuid,
                    "type": event.type,
                    "effective_type": decided_type,
                    "reason": event.reason or "undefined",
                    "status": event.status,
                    "replycode": event.replycode,
                    "diagnostic": event.diagnostic[: bounces.MAX_DIAGNOSTIC_CHARS],
                    "feedback_type": event.feedback_type,
                    "source": event.source,
                    "dedup_key": key,
                    "count_key": fact.count_key,
                    "meta": dict(event.meta),
                    "created_at": occurred[index],
                    "recorded_at": now,
                },
                subscriber.id if subscriber else None,
                counted,
                decided_type,
            )
        )
    flush()
    session.flush()
    result: list[BatchOutcome] = []
    for outcome in outcomes:
        assert outcome is not None
        result.append(outcome)
    return result


def _needs_record() -> list[str]:
    raise _NeedsRecord


def _occurred(event: Event, now: datetime) -> datetime:
    occurred = event.occurred_at or now
    return occurred.replace(tzinfo=UTC) if occurred.tzinfo is None else occurred


def _existing(session: Session, keys: list[str]) -> dict[str, RecordResult]:
    """What record() answers for dedup keys already stored: the duplicate result."""
    rows = session.execute(
        select(Bounce.dedup_key, Bounce.id, Bounce.subscriber_id, Bounce.effective_type).where(
            Bounce.dedup_key.in_(set(keys))
        )
    )
    return {
        key: RecordResult(
            bounce_id=bounce_id,
            duplicate=True,
            subscriber_id=subscriber_id,
            counted=False,
            action_taken="none",
            suppressed=False,
            effective_type=_event_type(effective_type),
        )
        for key, bounce_id, subscriber_id, effective_type in rows
    }


def _subscribers(
    session: Session, events: Sequence[Event], lock: bool
) -> dict[tuple[str, str], Subscriber]:
    uuids = {e.subscriber_uuid.strip().lower() for e in events if e.subscriber_uuid.strip()}
    emails = {normalize_email(e.email) for e in events if e.email.strip()}
    if not uuids and not emails:
        return {}
    query = (
        select(Subscriber)
        .where(or_(Subscriber.uuid.in_(uuids), func.lower(Subscriber.email).in_(emails)))
        .order_by(Subscriber.id)
    )
    if lock:
        query = query.with_for_update()
    found: dict[tuple[str, str], Subscriber] = {}
    for subscriber in session.scalars(query):
        found[("uuid", subscriber.uuid)] = subscriber
        found[("email", normalize_email(subscriber.email))] = subscriber
    return found


def _campaigns(session: Session, events: Sequence[Event]) -> dict[str, int]:
    uuids = {e.campaign_uuid.strip().lower() for e in events if e.campaign_uuid.strip()}
    if not uuids:
        return {}
    rows = session.execute(select(Campaign.uuid, Campaign.id).where(Campaign.uuid.in_(uuids)))
    return {uuid: campaign_id for uuid, campaign_id in rows}


def _erased(session: Session, hashes: list[str]) -> set[str]:
    """The hashes whose address was erased (kept in suppressions without the address)."""
    if not hashes:
        return set()
    rows = session.scalars(
        select(Suppression.email_hash).where(
            Suppression.email_hash.in_(set(hashes)), Suppression.email.is_(None)
        )
    )
    return {h for h in rows if h}


def _history(
    session: Session,
    found: list[Subscriber | None],
    hashes: list[str],
    config: BounceConfig,
    earliest: datetime,
) -> dict[tuple[str, object], list[Fact]]:
    """Every subject's stored bounces that a rule window can reach, as record() reads them."""
    subscriber_ids = {s.id for s in found if s is not None}
    stranger_hashes = {h for h, s in zip(hashes, found, strict=True) if s is None and h}
    if not subscriber_ids and not stranger_hashes:
        return {}
    query = select(
        Bounce.subscriber_id,
        Bounce.email_hash,
        Bounce.type,
        Bounce.reason,
        Bounce.count_key,
        Bounce.created_at,
        Bounce.effective_type,
    ).where(
        or_(
            Bounce.subscriber_id.in_(subscriber_ids),
            Bounce.subscriber_id.is_(None) & Bounce.email_hash.in_(stranger_hashes),
        )
    )
    widest = config.max_window_days()
    if widest:
        query = query.where(Bounce.created_at >= earliest - timedelta(days=widest))
    history: dict[tuple[str, object], list[Fact]] = {}
    for row in session.execute(query):
        subject: tuple[str, object] = (
            ("subscriber", row.subscriber_id)
            if row.subscriber_id is not None
            else ("hash", row.email_hash)
        )
        fact = Fact(row.type, row.reason, row.count_key, row.created_at, row.effective_type)
        history.setdefault(subject, []).append(fact)
    return history
