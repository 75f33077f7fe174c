"""Recording: `record()` / `record_many()` store, count, decide and act, in one transaction.

See the package docstring for the order of the steps. The work for a batch is done in a
handful of statements (the web layer's group commit hands whole batches to `record_many`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from stmails import metrics
from stmails.core.event import EVENT_TYPES, Event, EventType
from stmails.db.in_list import in_list
from stmails.db.models import Bounce, Campaign, Subscriber, Suppression
from stmails.db.prepared import Prepared, PreparedIn
from stmails.db.types import UTCDateTime, email_hash, normalize_email, utcnow
from stmails.db.upsert import insert_rows_or_ignore
from stmails.services import suppression
from stmails.services.alerts import watch
from stmails.services.bounces.actions import act_on_many
from stmails.services.bounces.attribution import Known, Subscribers, attribute, sent_messages
from stmails.services.bounces.history import sent_before, subject_of, subjects_filter
from stmails.services.bounces.rules import (
    ACTION_STRENGTH,
    Decision,
    Fact,
    base_type,
    count_key_of,
    decide,
)
from stmails.services.errors import InvalidInput
from stmails.services.hygiene import risk
from stmails.services.settings import BounceAction, BounceConfig, cached_bounce_config
from stmails.services.subscribers import EMAIL_KEY, email_key

log = logging.getLogger(__name__)


# Longest diagnostic kept; the rest of an MTA's essay adds nothing.
MAX_DIAGNOSTIC_CHARS = 4000
# Largest metadata kept per bounce, as JSON text (the API caps whole bodies at 1 MB).
MAX_META_CHARS = 65_536
# Field limits of the bounces table, checked before any SQL so that bad input is a clear error.
BOUNCES = cast(Table, Bounce.__table__)
_LIMITS = {
    "email": 320,
    "subscriber_uuid": 36,
    "campaign_uuid": 36,
    "reason": 64,
    "status": 16,
    "replycode": 16,
    "feedback_type": 64,
    "source": 64,
}


class RecordError(InvalidInput):
    """The event cannot be recorded as given; `field` names the offending field."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What `record()` did with one event."""

    bounce_id: int
    # True when the event had been recorded before; nothing was changed then.
    duplicate: bool
    subscriber_id: int | None
    # True when this bounce added to its subscriber's count (first for its campaign or day).
    counted: bool
    action_taken: BounceAction
    # True when this call put the address on (or confirmed it on) the suppression list.
    suppressed: bool
    effective_type: EventType
    # False when the attribution gate let the event only be recorded (see the module docstring).
    attributed: bool = True


def _check(event: Event) -> None:
    if event.type not in EVENT_TYPES:
        raise RecordError("type", f"must be one of {', '.join(EVENT_TYPES)}")
    if not event.email.strip() and not event.subscriber_uuid.strip():
        raise RecordError("email", "email or subscriber_uuid is required")
    if not event.source.strip():
        raise RecordError("source", "is required")
    for name, limit in _LIMITS.items():
        if len(getattr(event, name)) > limit:
            raise RecordError(name, f"longer than {limit} characters")
    if event.email.strip() and "@" not in event.email:
        raise RecordError("email", "is not an e-mail address")
    for name in (*_LIMITS, "event_id"):
        # PostgreSQL refuses NUL characters in text; in these fields they can only be garbage.
        if "\x00" in getattr(event, name):
            raise RecordError(name, "contains a NUL character")
    try:
        size = len(json.dumps(event.meta, ensure_ascii=False))
    except (TypeError, ValueError):
        raise RecordError("meta", "must be a JSON object") from None
    if size > MAX_META_CHARS:
        raise RecordError("meta", f"longer than {MAX_META_CHARS} characters as JSON")


def _without_nul(value: Any) -> Any:
    """`value` (text or JSON) with NUL characters removed: PostgreSQL cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _load_subscribers(
    session: Session, uuids: set[str], emails: set[str], *, lock: bool = False
) -> list[Known]:
    """The subscribers with any of `uuids` or (normalized) `emails`.

    `lock=True` locks their rows, in id order, until the transaction ends (PostgreSQL), so that
    concurrent bounces of one subscriber are counted one after the other without deadlocks.
    """
    if not uuids and not emails:
        return []
    query = _SUBSCRIBERS_LOCKED if lock else _SUBSCRIBERS
    rows = query.rows(_core(session), {"uuids": sorted(uuids), "emails": sorted(emails)})
    return [Known(subscriber_id, uuid, email) for subscriber_id, uuid, email in rows]


# The statements `record_many` runs for every batch, compiled once (see db.prepared): only
# their parameters change.
_SUBSCRIBERS_QUERY = (
    select(Subscriber.id, Subscriber.uuid, Subscriber.email)
    .where(
        or_(
            in_list(Subscriber.uuid, "uuids"),
            in_list(EMAIL_KEY, "emails"),
        )
    )
    .order_by(Subscriber.id)
)
_SUBSCRIBERS = Prepared(_SUBSCRIBERS_QUERY)
_SUBSCRIBERS_LOCKED = Prepared(_SUBSCRIBERS_QUERY.with_for_update())
# The rules look at a history as sets of (type, reason, count key, effective type) within a
# time window, so one row per such group, with its latest time, decides exactly as every row
# would: a group has a bounce inside a window exactly when its latest one is inside it.
_HISTORY_GROUP = (
    Bounce.subscriber_id,
    Bounce.email_hash,
    Bounce.type,
    Bounce.reason,
    Bounce.count_key,
    Bounce.effective_type,
)
_HISTORY = Prepared(
    select(*_HISTORY_GROUP, func.max(Bounce.created_at))
    .where(
        subjects_filter(),
        Bounce.created_at >= bindparam("since", type_=UTCDateTime()),
        # Unattributed bounces are history only: no rule counts them.
        Bounce.attributed.is_(True),
    )
    .group_by(*_HISTORY_GROUP)
)
# Suppression keys are raw digests (db.types.Sha256Digest), which `in_list`'s JSON cannot
# carry: their lookup binds each hash through the column's type.
_ERASED = PreparedIn(
    lambda keyed: select(Suppression.email_hash).where(keyed, Suppression.email.is_(None)),
    Suppression.email_hash,
)
_CAMPAIGN_IDS = Prepared(select(Campaign.uuid, Campaign.id).where(in_list(Campaign.uuid, "uuids")))
_STORED = Prepared(
    select(Bounce.dedup_key, Bounce.id, Bounce.subscriber_id, Bounce.effective_type).where(
        in_list(Bounce.dedup_key, "keys")
    )
)
# The columns `_store` gives for each new bounce (every column but the id).
_BOUNCE_COLUMNS = (
    "subscriber_id",
    "email",
    "email_hash",
    "campaign_id",
    "campaign_uuid",
    "type",
    "effective_type",
    "reason",
    "status",
    "replycode",
    "diagnostic",
    "feedback_type",
    "source",
    "dedup_key",
    "count_key",
    "meta",
    "created_at",
    "recorded_at",
    "attributed",
)
# "All time" for the history query's lower bound.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def record(
    session: Session,
    event: Event,
    *,
    now: datetime | None = None,
    config: BounceConfig | None = None,
) -> RecordResult:
    """Record `event` and apply the bounce rules, in the caller's transaction (it commits).

    Raises RecordError for an event that cannot be recorded (missing recipient, unknown type,
    over-long field); nothing is written then. `config` defaults to the rules in the settings
    table; `now` (the recording time) to the current time.
    """
    outcome = record_many(session, [event], now=now, config=config)[0]
    if isinstance(outcome, RecordError):
        raise outcome
    return outcome


@dataclass(slots=True)
class _Pending:
    """One valid event of a batch on its way through `record_many`."""

    index: int
    event: Event
    subscriber: Known | None
    address: str
    hashed: str
    fact: Fact
    dedup_key: str
    campaign_uuid: str
    decision: Decision | None = None
    duplicate: bool = False
    result: RecordResult | None = None
    bounce_id: int | None = None
    # The id of the campaign it names, when stmails knows that campaign.
    campaign_id: int | None = None
    effective_type: EventType = "soft"
    # Why the attribution gate let it only be recorded ("" when it may act).
    unattributed: str = ""
    # What the gate adds to its metadata.
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> tuple[int | None, str]:
        return (self.subscriber.id, "") if self.subscriber else (None, self.hashed)


def _core(session: Session) -> Connection:
    """The connection of `session`'s transaction, for the Core statements of `record_many`.

    They skip the ORM's per-statement work (autoflush, ORM result loading), which costs more
    than the statements themselves. This is sound because `record_many` makes no ORM change
    between them, and flushes what the caller left pending before the first (as the ORM's
    autoflush would).
    """
    return session.connection()


def record_many(
    session: Session,
    events: Sequence[Event],
    *,
    now: datetime | None = None,
    config: BounceConfig | None = None,
) -> list[RecordResult | RecordError]:
    """Record several events in the caller's transaction, as if by `record()` one after another.

    Returns one outcome per event, in order: its RecordResult, or the RecordError that refused
    it (the others are recorded all the same). The work is done in a handful of statements for
    the whole batch, which is what lets a server acknowledge thousands of bounces a second.
    """
    now = now or utcnow()
    # What the ORM's autoflush would do before a query: the statements below see the caller's
    # pending changes.
    if session.autoflush:
        session.flush()
    config = config or cached_bounce_config(session)
    outcomes: list[RecordResult | RecordError | None] = [None] * len(events)
    valid: list[tuple[int, Event]] = []
    for index, event in enumerate(events):
        try:
            _check(event)
        except RecordError as exc:
            outcomes[index] = exc
        else:
            valid.append((index, event))
    pending = _prepare(session, valid, config, now)
    if pending:
        _judge(session, pending, config)
        _store(session, pending, config, now)
        _apply(session, pending, now)
        _watch(session, pending, now)
        for item in pending:
            outcomes[item.index] = item.result
        # The bounce-risk scores of the subscribers these events were about, in the same
        # transaction (services.hygiene.risk).
        risk.rescore(
            session,
            [item.subscriber.id for item in pending if item.subscriber and not item.duplicate],
            now=now,
        )
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(events)
    _tally(session, events, done)
    return done


def _watch(session: Session, pending: list[_Pending], now: datetime) -> None:
    """Lets the deliverability watcher judge the campaigns the new bounces belong to, in this
    transaction (services.alerts.watch), so that a pause is committed with the bounce that
    caused it. A failure of the watcher is logged and undone; the bounces are kept."""
    items = [
        (p.campaign_id, p.address)
        for p in pending
        if p.bounce_id is not None and not p.duplicate and p.campaign_id and not p.unattributed
    ]
    if not items:
        return
    domains = watch.bounced_domains(items)
    try:
        with session.begin_nested():
            watch.judge(session, domains, domains, now=now)
    except Exception:
        log.exception("the deliverability watcher failed on campaigns %s", sorted(domains))


# Events recorded in a session, counted into the metrics once the session commits (a rolled
# back transaction stored nothing): {(source, outcome): count} in `session.info`.
_TALLY = "stmails.ingested"


def _tally(
    session: Session, events: Sequence[Event], outcomes: Sequence[RecordResult | RecordError]
) -> None:
    tally: dict[tuple[str, str], int] = session.info.setdefault(_TALLY, {})
    for event, outcome in zip(events, outcomes, strict=True):
        if isinstance(outcome, RecordError):
            label = "refused"
        else:
            label = "duplicate" if outcome.duplicate else "stored"
        key = (str(event.source or "unknown"), label)
        tally[key] = tally.get(key, 0) + 1


@sa_event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    tally = session.info.pop(_TALLY, None)
    if tally:
        for (source, outcome), count in tally.items():
            metrics.event_ingested(source, outcome, count)


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_TALLY, None)


def _prepare(
    session: Session, valid: list[tuple[int, Event]], config: BounceConfig, now: datetime
) -> list[_Pending]:
    """Look up subscribers, erased addresses and known dedup keys for the whole batch, and
    pass the events of unauthenticated channels through the attribution gate."""
    if not valid:
        return []
    sent = sent_messages(session, [e for _, e in valid])
    found = Subscribers(
        _load_subscribers(
            session,
            ({e.subscriber_uuid.strip().lower() for _, e in valid} | {s for s, _ in sent.values()})
            - {""},
            {normalize_email(e.email) for _, e in valid} - {""},
            lock=config.enabled,
        )
    )
    # How many events of each message may act so far.
    acting: dict[str, int] = {}
    pending: list[_Pending] = []
    for index, event in valid:
        subscriber = found.match(event.subscriber_uuid, event.email)
        address = email_key(event.email) or (email_key(subscriber.email) if subscriber else "")
        campaign_uuid = event.campaign_uuid.strip().lower()
        unattributed = ""
        notes: dict[str, str] = {}
        if event.evidence is not None:
            gated = attribute(event, event.evidence, config.mailbox_trust, found, sent, acting)
            subscriber, unattributed, notes = gated.subscriber, gated.unattributed, gated.notes
            address = gated.address
            campaign_uuid = gated.campaign_uuid
        occurred = event.occurred_at or now
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        pending.append(
            _Pending(
                index=index,
                event=event,
                subscriber=subscriber,
                address=address,
                hashed=email_hash(address) if address else "",
                fact=Fact(
                    event.type,
                    event.reason or "undefined",
                    count_key_of(campaign_uuid, occurred),
                    occurred,
                ),
                dedup_key=event.dedup_key(),
                campaign_uuid=campaign_uuid,
                unattributed=unattributed,
                notes=notes,
            )
        )
    return pending


def _judge(session: Session, pending: list[_Pending], config: BounceConfig) -> None:
    """Decide each new event in order, each seeing the stored history and the batch before it."""
    histories = _histories(session, pending, config) if config.enabled else {}
    seen: set[str] = set()
    for item in pending:
        # Repeats of an event already stored are found when the insert skips them (_store);
        # judging them meanwhile is harmless, as their decision is then dropped.
        if item.dedup_key in seen:
            item.duplicate = True
            continue
        seen.add(item.dedup_key)
        if not config.enabled or item.subject == (None, "") or item.unattributed:
            continue
        history = histories.setdefault(item.subject, [])
        item.decision = decide(
            config,
            item.fact,
            history,
            sent_before(
                session,
                item.subscriber.id if item.subscriber else None,
                item.fact.created_at,
                config.escalation_count,
            ),
        )
        history.append(replace(item.fact, effective_type=item.decision.effective_type))


def _histories(
    session: Session, pending: list[_Pending], config: BounceConfig
) -> dict[tuple[int | None, str], list[Fact]]:
    """The stored bounces of every subject in the batch that a rule window can reach."""
    subscriber_ids = {p.subscriber.id for p in pending if p.subscriber}
    hashes = {p.hashed for p in pending if not p.subscriber and p.hashed}
    if not subscriber_ids and not hashes:
        return {}
    widest = config.max_window_days()
    since = min(p.fact.created_at for p in pending) - timedelta(days=widest) if widest else _EPOCH
    params = {"ids": sorted(subscriber_ids), "hashes": sorted(hashes), "since": since}
    out: dict[tuple[int | None, str], list[Fact]] = {}
    for subscriber_id, hashed, kind, reason, count_key, effective, created_at in _HISTORY.rows(
        _core(session), params
    ):
        subject = subject_of(subscriber_id, hashed, subscriber_ids)
        if subject is None:
            continue
        out.setdefault(subject, []).append(Fact(kind, reason, count_key, created_at, effective))
    return out


def _store(session: Session, pending: list[_Pending], config: BounceConfig, now: datetime) -> None:
    """Insert the new bounces; a concurrent transaction that stored one first makes it a
    duplicate (and its decision void)."""
    fresh = [p for p in pending if not p.duplicate]
    stranger_hashes = {p.hashed for p in fresh if p.subscriber is None and p.hashed}
    # Addresses deleted by the rules are known only by their hash: keep it that way.
    erased = (
        {hashed for (hashed,) in _ERASED.rows(_core(session), sorted(stranger_hashes))}
        if stranger_hashes
        else set()
    )
    campaigns = _campaign_ids(session, {p.campaign_uuid for p in fresh} - {""})
    keyed_rows: list[tuple[str, tuple[Any, ...]]] = []
    for item in fresh:
        item.effective_type = effective = (
            item.decision.effective_type
            if item.decision
            else base_type(item.fact.type, item.fact.reason, config)
        )
        event = item.event
        # In the order of _BOUNCE_COLUMNS.
        row = (
            item.subscriber.id if item.subscriber else None,
            item.hashed if item.hashed in erased else item.address,
            item.hashed,
            campaigns.get(item.campaign_uuid),
            item.campaign_uuid,
            event.type,
            effective,
            item.fact.reason,
            event.status,
            event.replycode,
            _without_nul(event.diagnostic[:MAX_DIAGNOSTIC_CHARS]),
            event.feedback_type,
            event.source,
            item.dedup_key,
            item.fact.count_key,
            _without_nul({**event.meta, **item.notes} if item.notes else event.meta),
            item.fact.created_at,
            now,
            not item.unattributed,
        )
        keyed_rows.append((item.dedup_key, row))
    # Rows go in key order, so that two transactions inserting the same events (PostgreSQL)
    # wait for each other in one order and cannot deadlock.
    keyed_rows.sort(key=lambda keyed: keyed[0])
    inserted = dict(
        insert_rows_or_ignore(
            _core(session),
            BOUNCES,
            _BOUNCE_COLUMNS,
            [row for _, row in keyed_rows],
            ("dedup_key", "id"),
        )
    )
    for item in fresh:
        item.campaign_id = campaigns.get(item.campaign_uuid)
        if item.dedup_key in inserted:
            item.bounce_id = inserted[item.dedup_key]
        else:
            item.duplicate, item.decision = True, None
    for item in fresh:
        if item.hashed in erased:
            item.address = ""


def _campaign_ids(session: Session, uuids: set[str]) -> dict[str, int]:
    """Ids of the campaigns stmails knows among `uuids`."""
    if not uuids:
        return {}
    rows = _CAMPAIGN_IDS.rows(_core(session), {"uuids": sorted(uuids)})
    return {uuid: campaign_id for uuid, campaign_id in rows}


def _apply(session: Session, pending: list[_Pending], now: datetime) -> None:
    """Act on subscribers (the strongest action of the batch each), suppress, and fill in the
    result of every event."""
    strongest: dict[int, tuple[Known, str, BounceAction]] = {}
    to_suppress: list[suppression.NewSuppression] = []
    for item in pending:
        decision = item.decision
        if decision is None:
            continue
        if item.subscriber is not None and decision.action != "none":
            sub_id = item.subscriber.id
            current = strongest.get(sub_id)
            if current is None or ACTION_STRENGTH[decision.action] > ACTION_STRENGTH[current[2]]:
                strongest[sub_id] = (item.subscriber, item.hashed, decision.action)
    deleted = {sub_id for sub_id, (_, _, action) in strongest.items() if action == "delete"}
    if strongest:
        # The rules act on ORM objects (the caller's, when its session holds them already).
        loaded = {
            subscriber.id: subscriber
            for subscriber in session.scalars(
                select(Subscriber).where(Subscriber.id.in_(sorted(strongest)))
            )
        }
        act_on_many(
            session,
            [(loaded[sub_id], hashed, action) for sub_id, (_, hashed, action) in strongest.items()],
            now,
        )
    for item in pending:
        decision = item.decision
        if decision is None or decision.suppress_reason is None or not item.hashed:
            continue
        hash_only = not item.address or (
            item.subscriber is not None and item.subscriber.id in deleted
        )
        to_suppress.append(
            suppression.NewSuppression(
                hashed=item.hashed,
                reason=decision.suppress_reason,
                email=None if hash_only else item.address,
                source=item.event.source,
                description=f"{decision.effective_type} bounce ({item.fact.reason})",
            )
        )
    suppression.add_many(session, to_suppress, now=now)
    _fill_results(session, pending, deleted)


def _fill_results(session: Session, pending: list[_Pending], deleted: set[int]) -> None:
    # Repeats were not inserted: read what was stored for them (by an earlier call or event).
    repeats = {p.dedup_key for p in pending if p.bounce_id is None}
    known = (
        {row[0]: row for row in _STORED.rows(_core(session), {"keys": sorted(repeats)})}
        if repeats
        else {}
    )
    for item in pending:
        decision = item.decision
        if item.bounce_id is None:
            _, bounce_id, stored_subscriber_id, stored_type = known[item.dedup_key]
            item.result = RecordResult(
                bounce_id=bounce_id,
                duplicate=True,
                subscriber_id=stored_subscriber_id,
                counted=False,
                action_taken="none",
                suppressed=False,
                effective_type=_as_type(stored_type),
                attributed=not item.unattributed,
            )
            continue
        subscriber_id = item.subscriber.id if item.subscriber else None
        if subscriber_id in deleted:
            subscriber_id = None
        item.result = RecordResult(
            bounce_id=item.bounce_id,
            duplicate=False,
            subscriber_id=subscriber_id,
            counted=decision.counted if decision else False,
            action_taken=decision.action if decision and item.subscriber else "none",
            suppressed=bool(decision and decision.suppress_reason and item.hashed),
            effective_type=item.effective_type,
            attributed=not item.unattributed,
        )


def record_and_commit(
    session: Session, event: Event, *, now: datetime | None = None
) -> RecordResult:
    """`record()` then commit; rolls back and re-raises on any error."""
    try:
        result = record(session, event, now=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def _as_type(value: str) -> EventType:
    for kind in EVENT_TYPES:
        if value == kind:
            return kind
    raise ValueError(f"unknown bounce type {value!r}")
