"""The one door for bounces: `record()` stores, counts, decides and acts, in one transaction.

Every channel (the HTTP API, mailboxes, ESP webhooks, SMTP-time rejections) hands a normalized
`Event` to `record()`. What it does, in order (docs/bounces-rules.md explains the rules):

1. find the subscriber: by uuid, else by address (case-insensitively); unknown addresses are
   recorded by address alone;
2. store the bounce once: the event's dedup key is unique, a repeat returns `duplicate=True` and
   changes nothing (a savepoint absorbs the race of two concurrent deliveries);
3. work out the type the rules count it as: reason overrides, then soft-bounce escalation;
4. count the subscriber's bounces of that type within the rule's window, one per campaign (or
   per calendar day, UTC, without a campaign), and when the count reaches the rule, act:
   `none`, `unsubscribe`, `blocklist` or `delete`;
5. when a hard-bounce or complaint rule is reached, put the address on the suppression list, for
   subscribers and strangers alike.

`reapply()` replays the whole history under the rules in force (`stmails bounces reapply`).
The listing and deletion helpers at the end serve the HTTP API (`/api/bounces`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.core.event import EVENT_TYPES, Event, EventType
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignSend,
    Subscriber,
    SubscriberList,
)
from stmails.db.types import email_hash, normalize_email, utcnow
from stmails.services import suppression
from stmails.services.errors import InvalidInput
from stmails.services.pages import Page, check_paging, ordering, paged
from stmails.services.settings import BounceAction, BounceConfig, bounce_config
from stmails.services.suppression import SuppressionReason

# Stronger actions include the weaker ones; replays keep the strongest.
ACTION_STRENGTH: dict[BounceAction, int] = {
    "none": 0,
    "unsubscribe": 1,
    "blocklist": 2,
    "delete": 3,
}
# Longest diagnostic kept; the rest of an MTA's essay adds nothing.
MAX_DIAGNOSTIC_CHARS = 4000
# What an erased address reads as inside kept diagnostics.
ERASED = "[erased]"
# Field limits of the bounces table, checked before any SQL so that bad input is a clear error.
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


def find_subscriber(
    session: Session, *, uuid: str = "", email: str = "", lock: bool = False
) -> Subscriber | None:
    """The subscriber with `uuid`, else with address `email` (any case), else None.

    `lock=True` locks the row until the transaction ends (PostgreSQL), so that concurrent bounces
    of one subscriber are counted one after the other.
    """
    queries: list[Select[Subscriber]] = []
    if uuid.strip():
        queries.append(select(Subscriber).where(Subscriber.uuid == uuid.strip().lower()))
    if email.strip():
        queries.append(
            select(Subscriber).where(func.lower(Subscriber.email) == normalize_email(email))
        )
    for query in queries:
        found = session.scalars(query.with_for_update() if lock else query).first()
        if found is not None:
            return found
    return None


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
    _check(event)
    now = now or utcnow()
    config = config or bounce_config(session)
    occurred = event.occurred_at or now
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    subscriber = find_subscriber(
        session, uuid=event.subscriber_uuid, email=event.email, lock=config.enabled
    )
    address = normalize_email(event.email) or (subscriber.email.lower() if subscriber else "")
    hashed = email_hash(address) if address else ""
    # An address that was deleted by the rules is known only by its hash: keep it that way.
    erased = subscriber is None and bool(hashed) and suppression.is_erased(session, hashed)
    campaign_id = None
    if event.campaign_uuid:
        campaign_id = session.scalars(
            select(Campaign.id).where(Campaign.uuid == event.campaign_uuid.strip().lower())
        ).first()
    bounce = Bounce(
        subscriber_id=subscriber.id if subscriber else None,
        email=hashed if erased else address,
        email_hash=hashed,
        campaign_id=campaign_id,
        campaign_uuid=event.campaign_uuid.strip().lower(),
        type=event.type,
        effective_type=base_type(event.type, event.reason, config),
        reason=event.reason or "undefined",
        status=event.status,
        replycode=event.replycode,
        diagnostic=event.diagnostic[:MAX_DIAGNOSTIC_CHARS],
        feedback_type=event.feedback_type,
        source=event.source,
        dedup_key=event.dedup_key(),
        count_key=count_key_of(event.campaign_uuid.strip(), occurred),
        meta=dict(event.meta),
        created_at=occurred,
        recorded_at=now,
    )
    try:
        with session.begin_nested():
            session.add(bounce)
    except IntegrityError:
        # Stored before (or by a concurrent call that committed first): report, change nothing.
        existing = session.scalars(
            select(Bounce).where(Bounce.dedup_key == bounce.dedup_key)
        ).first()
        if existing is None:
            raise
        return RecordResult(
            bounce_id=existing.id,
            duplicate=True,
            subscriber_id=existing.subscriber_id,
            counted=False,
            action_taken="none",
            suppressed=False,
            effective_type=_as_type(existing.effective_type),
        )
    if not config.enabled or (not hashed and subscriber is None):
        return RecordResult(
            bounce.id,
            False,
            bounce.subscriber_id,
            False,
            "none",
            False,
            _as_type(bounce.effective_type),
        )
    history = _history(session, bounce, config)
    decision = decide(
        config,
        _fact(bounce),
        history,
        _sent_before(session, subscriber, occurred, config.escalation_count),
    )
    bounce.effective_type = decision.effective_type
    action_taken = _act(session, subscriber, decision.action, hashed, now) if subscriber else "none"
    suppressed = False
    if decision.suppress_reason is not None:
        _suppress(
            session,
            address,
            hashed,
            erased or action_taken == "delete",
            decision.suppress_reason,
            event.source,
            bounce,
            now,
        )
        suppressed = True
    session.flush()
    return RecordResult(
        bounce_id=bounce.id,
        duplicate=False,
        subscriber_id=None if action_taken == "delete" else bounce.subscriber_id,
        counted=decision.counted,
        action_taken=action_taken,
        suppressed=suppressed,
        effective_type=decision.effective_type,
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


def _fact(bounce: Bounce) -> Fact:
    return Fact(
        bounce.type, bounce.reason, bounce.count_key, bounce.created_at, bounce.effective_type
    )


def _subject_filter(subscriber_id: int | None, hashed: str) -> ColumnElement[bool]:
    if subscriber_id is not None:
        return Bounce.subscriber_id == subscriber_id
    return (Bounce.subscriber_id.is_(None)) & (Bounce.email_hash == hashed)


def _history(session: Session, bounce: Bounce, config: BounceConfig) -> list[Fact]:
    """The subject's other bounces that any rule window can reach."""
    query = select(
        Bounce.type, Bounce.reason, Bounce.count_key, Bounce.created_at, Bounce.effective_type
    ).where(_subject_filter(bounce.subscriber_id, bounce.email_hash), Bounce.id != bounce.id)
    widest = config.max_window_days()
    if widest:
        query = query.where(Bounce.created_at >= bounce.created_at - timedelta(days=widest))
    return [Fact(*row) for row in session.execute(query)]


def _recent_campaigns_sent(
    session: Session, subscriber: Subscriber | None, before: datetime, limit: int
) -> list[str]:
    if subscriber is None or limit <= 0:
        return []
    query = (
        select(Campaign.uuid)
        .join(CampaignSend, CampaignSend.campaign_id == Campaign.id)
        .where(
            CampaignSend.subscriber_id == subscriber.id,
            CampaignSend.status == "sent",
            CampaignSend.sent_at <= before,
        )
        .order_by(CampaignSend.sent_at.desc(), CampaignSend.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def _sent_before(
    session: Session, subscriber: Subscriber | None, before: datetime, limit: int
) -> Callable[[], list[str]]:
    """A deferred `_recent_campaigns_sent` query (run only when escalation needs it)."""
    return lambda: _recent_campaigns_sent(session, subscriber, before, limit)


def _act(
    session: Session, subscriber: Subscriber, action: BounceAction, hashed: str, now: datetime
) -> BounceAction:
    """Apply `action` to `subscriber`; returns it. Repeating an action is harmless."""
    if action in ("unsubscribe", "blocklist"):
        session.execute(
            update(SubscriberList)
            .where(SubscriberList.subscriber_id == subscriber.id)
            .values(status="unsubscribed", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    if action == "blocklist":
        subscriber.status = "blocklisted"
        subscriber.updated_at = now
    if action == "delete":
        erase_subscriber(session, subscriber, hashed or email_hash(subscriber.email))
    return action


def erase_subscriber(session: Session, subscriber: Subscriber, hashed: str) -> None:
    """Delete `subscriber` and the personal data bounces hold about it; keep the hash.

    Its bounces stay (the history) without subscriber, with the address replaced by its hash,
    the address scrubbed from diagnostics and the metadata dropped. Suppression entries of the
    address keep only the hash. Subscriptions and send records go with the subscriber.
    """
    addresses = {normalize_email(subscriber.email)}
    rows = session.scalars(
        select(Bounce).where(
            or_(Bounce.subscriber_id == subscriber.id, Bounce.email_hash == hashed)
        )
    )
    for row in rows:
        addresses.add(normalize_email(row.email))
        row.subscriber_id = None
        row.email = hashed
        row.email_hash = hashed
        row.meta = {}
    session.flush()
    pattern = _address_pattern(a for a in addresses if "@" in a)
    if pattern is not None:
        for row in session.scalars(select(Bounce).where(Bounce.email_hash == hashed)):
            row.diagnostic = pattern.sub(ERASED, row.diagnostic)
    suppression.erase(session, subscriber.email)
    session.delete(subscriber)
    session.flush()


def _address_pattern(addresses: Any) -> re.Pattern[str] | None:
    alternatives = sorted({re.escape(a) for a in addresses}, key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def _suppress(
    session: Session,
    address: str,
    hashed: str,
    hash_only: bool,
    reason: SuppressionReason,
    source: str,
    bounce: Bounce,
    now: datetime,
) -> None:
    description = f"bounce {bounce.id}: {bounce.effective_type} ({bounce.reason})"
    if hash_only or not address:
        suppression.add(
            session,
            hashed=hashed,
            reason=reason,
            source=source,
            description=description,
            keep_address=False,
            now=now,
        )
    else:
        suppression.add(
            session, email=address, reason=reason, source=source, description=description, now=now
        )


@dataclass
class ReapplyResult:
    """What `reapply()` changed."""

    bounces: int = 0
    retyped: int = 0
    subjects: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0


def reapply(
    session: Session,
    *,
    config: BounceConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReapplyResult:
    """Replay every bounce, oldest first, under the rules in force; the caller commits.

    Effective types are recomputed (reason overrides, escalation); for each subscriber the
    strongest action any of its bounces reaches is applied, and addresses that reach a hard or
    complaint rule are suppressed. Nothing is ever undone: a blocklisted subscriber stays
    blocklisted and suppressions stay, even if the new rules would not have made them.
    `progress(done, total)` is called after each subject.
    """
    config = config or bounce_config(session)
    result = ReapplyResult()
    subscriber_ids = list(
        session.scalars(
            select(Bounce.subscriber_id).where(Bounce.subscriber_id.is_not(None)).distinct()
        )
    )
    strangers = list(
        session.scalars(
            select(Bounce.email_hash)
            .where(Bounce.subscriber_id.is_(None), Bounce.email_hash != "")
            .distinct()
        )
    )
    subjects: list[tuple[int | None, str]] = [(i, "") for i in subscriber_ids if i is not None]
    subjects += [(None, h) for h in strangers]
    for done, (subscriber_id, hashed) in enumerate(subjects, start=1):
        _reapply_subject(session, subscriber_id, hashed, config, result)
        if progress is not None:
            progress(done, len(subjects))
    result.subjects = len(subjects)
    session.flush()
    return result


def _reapply_subject(
    session: Session,
    subscriber_id: int | None,
    hashed: str,
    config: BounceConfig,
    result: ReapplyResult,
) -> None:
    subscriber = session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    rows = list(
        session.scalars(
            select(Bounce)
            .where(_subject_filter(subscriber_id, hashed))
            .order_by(Bounce.created_at, Bounce.id)
        )
    )
    history: list[Fact] = []
    strongest: BounceAction = "none"
    suppress: tuple[SuppressionReason, Bounce] | None = None
    for row in rows:
        decision = decide(
            config,
            Fact(row.type, row.reason, row.count_key, row.created_at),
            history,
            _sent_before(session, subscriber, row.created_at, config.escalation_count),
        )
        if row.effective_type != decision.effective_type:
            row.effective_type = decision.effective_type
            result.retyped += 1
        history.append(_fact(row))
        if ACTION_STRENGTH[decision.action] > ACTION_STRENGTH[strongest]:
            strongest = decision.action
        if decision.suppress_reason is not None and suppress is None:
            suppress = (decision.suppress_reason, row)
    result.bounces += len(rows)
    if subscriber is not None and strongest != "none":
        _act(session, subscriber, strongest, email_hash(subscriber.email), utcnow())
        result.actions[strongest] = result.actions.get(strongest, 0) + 1
    if suppress is not None:
        reason, row = suppress
        address = "" if "@" not in row.email else row.email
        key = row.email_hash or (email_hash(address) if address else "")
        if key:
            _suppress(
                session,
                address,
                key,
                not address or strongest == "delete",
                reason,
                row.source,
                row,
                utcnow(),
            )
            result.suppressed += 1


# --- Listing and deleting, for the HTTP API -------------------------------------------------

_Ts = TypeVarTuple("_Ts")

BounceOrder = Literal["created_at", "email", "campaign_name", "source", "type", "reason", "id"]


@dataclass(frozen=True, slots=True)
class BounceFilter:
    """Filters of `list_bounces` (all optional; combined with AND)."""

    campaign_id: int | None = None
    subscriber_id: int | None = None
    type: str | None = None
    reason: str | None = None
    source: str | None = None
    # Exact address, any case.
    email: str | None = None
    # created_at >= since and created_at < until.
    since: datetime | None = None
    until: datetime | None = None
    ids: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class BounceRow:
    """One bounce as the API shows it (listmonk's fields plus stmails' own)."""

    id: int
    type: str
    effective_type: str
    reason: str
    status: str
    replycode: str
    diagnostic: str
    feedback_type: str
    source: str
    meta: Mapping[str, Any]
    email: str
    subscriber_id: int | None
    subscriber_uuid: str | None
    campaign_id: int | None
    campaign_uuid: str
    campaign_name: str | None
    created_at: datetime
    recorded_at: datetime


BouncePage = Page[BounceRow]


def _filtered(query: Select[*_Ts], filters: BounceFilter) -> Select[*_Ts]:
    conditions: list[ColumnElement[bool]] = []
    if filters.campaign_id is not None:
        conditions.append(Bounce.campaign_id == filters.campaign_id)
    if filters.subscriber_id is not None:
        conditions.append(Bounce.subscriber_id == filters.subscriber_id)
    if filters.type:
        conditions.append(Bounce.type == filters.type)
    if filters.reason:
        conditions.append(Bounce.reason == filters.reason)
    if filters.source:
        conditions.append(Bounce.source == filters.source)
    if filters.email:
        conditions.append(Bounce.email_hash == email_hash(filters.email))
    if filters.since is not None:
        conditions.append(Bounce.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Bounce.created_at < filters.until)
    if filters.ids is not None:
        conditions.append(Bounce.id.in_(list(filters.ids)))
    return query.where(*conditions)


_ORDER_COLUMNS: dict[str, Any] = {
    "created_at": Bounce.created_at,
    "email": Bounce.email,
    "campaign_name": Campaign.name,
    "source": Bounce.source,
    "type": Bounce.type,
    "reason": Bounce.reason,
    "id": Bounce.id,
}


def list_bounces(
    session: Session,
    filters: BounceFilter = BounceFilter(),
    *,
    order_by: str = "created_at",
    order: str = "desc",
    page: int = 1,
    per_page: int | None = 20,
) -> BouncePage:
    """Bounces matching `filters`, newest first by default, one page at a time.

    `order_by` is one of created_at, email, campaign_name, source, type, reason, id; `order` is
    asc or desc (InvalidInput otherwise); ties are broken by id. `per_page` None returns all.
    """
    terms = ordering(_ORDER_COLUMNS, order_by, order, Bounce.id)
    check_paging(page, per_page)
    total = session.scalar(_filtered(select(func.count(Bounce.id)), filters)) or 0
    query = _filtered(_row_query(), filters).order_by(*terms)
    rows = [_row(r) for r in session.execute(paged(query, page, per_page))]
    return Page(rows, int(total), page, per_page)


def get_bounce(session: Session, bounce_id: int) -> BounceRow | None:
    """One bounce by id, or None."""
    found = session.execute(_row_query().where(Bounce.id == bounce_id)).first()
    return _row(found) if found is not None else None


def delete_bounces(session: Session, filters: BounceFilter) -> int:
    """Delete the bounces matching `filters` (all of them with an empty filter); returns how many.

    Only history is removed: subscriber statuses and suppressions stay as they are.
    """
    ids = select(Bounce.id)
    result = session.execute(
        delete(Bounce)
        .where(Bounce.id.in_(_filtered(ids, filters).scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def blocklist_bounced(session: Session, *, now: datetime | None = None) -> int:
    """Blocklist every subscriber that has bounces (listmonk's PUT /api/bounces/blocklist).

    Their subscriptions become unsubscribed. Returns the number of subscribers blocklisted now.
    """
    now = now or utcnow()
    bounced = select(Bounce.subscriber_id).where(Bounce.subscriber_id.is_not(None))
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.subscriber_id.in_(bounced))
        .values(status="unsubscribed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(bounced), Subscriber.status != "blocklisted")
        .values(status="blocklisted", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _row_query() -> Select[Bounce, str, str]:
    return (
        select(Bounce, Subscriber.uuid, Campaign.name)
        .outerjoin(Subscriber, Subscriber.id == Bounce.subscriber_id)
        .outerjoin(Campaign, Campaign.id == Bounce.campaign_id)
    )


def _row(found: Any) -> BounceRow:
    bounce, subscriber_uuid, campaign_name = found
    return BounceRow(
        id=bounce.id,
        type=bounce.type,
        effective_type=bounce.effective_type,
        reason=bounce.reason,
        status=bounce.status,
        replycode=bounce.replycode,
        diagnostic=bounce.diagnostic,
        feedback_type=bounce.feedback_type,
        source=bounce.source,
        meta=bounce.meta,
        email=bounce.email,
        subscriber_id=bounce.subscriber_id,
        subscriber_uuid=subscriber_uuid,
        campaign_id=bounce.campaign_id,
        campaign_uuid=bounce.campaign_uuid,
        campaign_name=campaign_name,
        created_at=bounce.created_at,
        recorded_at=bounce.recorded_at,
    )
