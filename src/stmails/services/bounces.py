"""The one door for bounces: `record()` stores, counts, decides and acts, in one transaction.

Every channel (the HTTP API, mailboxes, ESP webhooks, SMTP-time rejections) hands a normalized
`Event` to `record()`. What it does, in order (docs/bounces-rules.md explains the rules):

1. find the subscriber: by uuid, else by address (case-insensitively); unknown addresses are
   recorded by address alone;
2. store the bounce once: the event's dedup key is unique, a repeat returns `duplicate=True` and
   changes nothing (INSERT ... ON CONFLICT DO NOTHING absorbs two concurrent deliveries);
3. work out the type the rules count it as: reason overrides, then soft-bounce escalation;
4. count the subscriber's bounces of that type within the rule's window, one per campaign (or
   per calendar day, UTC, without a campaign), and when the count reaches the rule, act:
   `none`, `unsubscribe`, `blocklist` or `delete`;
5. when a hard-bounce or complaint rule is reached, put the address on the suppression list, for
   subscribers and strangers alike.

The attribution gate comes first: an event from an unauthenticated channel (a bounce mailbox:
it carries `Evidence`) acts only when `bounce.mailbox_trust` accepts its evidence (a verified
VERP token; with "sent", also a Message-ID of mail stmails sent to that recipient; with "any",
nothing), and one message acts on at most `MAX_ACTING_RECIPIENTS` recipients. Any other such
event is stored unattributed (`attributed` false, `meta["unattributed"]` saying why): it is
history only, no rule counts it, and it never unsubscribes, blocklists or suppresses.

`record_many()` does the same for a batch of events in a handful of statements (the web layer's
group commit uses it); `record()` is a batch of one.
`reapply()` replays the whole history under the rules in force (`stmails bounces reapply`).
The listing and deletion helpers at the end serve the HTTP API (`/api/bounces`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVarTuple, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from stmails import metrics
from stmails.core.event import EVENT_TYPES, Event, EventType, Evidence
from stmails.db.in_list import in_list
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignSend,
    Subscriber,
    SubscriberList,
    Suppression,
)
from stmails.db.prepared import Prepared, PreparedIn
from stmails.db.types import UTCDateTime, email_hash, normalize_email, utcnow
from stmails.db.upsert import insert_rows_or_ignore
from stmails.services import suppression
from stmails.services.alerts import watch
from stmails.services.errors import InvalidInput
from stmails.services.hygiene import risk
from stmails.services.pages import Page, check_paging, ordering, paged
from stmails.services.settings import (
    BounceAction,
    BounceConfig,
    MailboxTrust,
    bounce_config,
    cached_bounce_config,
)
from stmails.services.suppression import SuppressionReason

log = logging.getLogger(__name__)

# Stronger actions include the weaker ones; replays keep the strongest.
ACTION_STRENGTH: dict[BounceAction, int] = {
    "none": 0,
    "unsubscribe": 1,
    "blocklist": 2,
    "delete": 3,
}
# Longest diagnostic kept; the rest of an MTA's essay adds nothing.
MAX_DIAGNOSTIC_CHARS = 4000
# Largest metadata kept per bounce, as JSON text (the API caps whole bodies at 1 MB).
MAX_META_CHARS = 65_536
# What an erased address reads as inside kept diagnostics.
ERASED = "[erased]"
# Field limits of the bounces table, checked before any SQL so that bad input is a clear error.
BOUNCES = cast(Table, Bounce.__table__)
# One message from a bounce mailbox acts on at most this many recipients, whatever the trust:
# stmails sends one recipient per message, so a genuine bounce names one or two.
MAX_ACTING_RECIPIENTS = 10
# Why a bounce from a mailbox was recorded without acting (`meta["unattributed"]`).
UNATTRIBUTED_NO_VERP = "no valid VERP token (bounce.mailbox_trust is verp)"
UNATTRIBUTED_NOT_SENT = "no valid VERP token and no Message-ID of mail stmails sent to this address"
UNATTRIBUTED_OTHER_RECIPIENT = "the returned message was sent to another recipient"
UNATTRIBUTED_GONE = "the subscriber the VERP token names no longer exists"
UNATTRIBUTED_TOO_MANY = f"the message reports more than {MAX_ACTING_RECIPIENTS} recipients"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
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


@dataclass(frozen=True, slots=True)
class _Known:
    """A subscriber as recording sees it: its row's id, uuid and address (no ORM object; one
    is loaded only for a subscriber the rules act on)."""

    id: int
    uuid: str
    email: str


def _load_subscribers(
    session: Session, uuids: set[str], emails: set[str], *, lock: bool = False
) -> list[_Known]:
    """The subscribers with any of `uuids` or (normalized) `emails`.

    `lock=True` locks their rows, in id order, until the transaction ends (PostgreSQL), so that
    concurrent bounces of one subscriber are counted one after the other without deadlocks.
    """
    if not uuids and not emails:
        return []
    query = _SUBSCRIBERS_LOCKED if lock else _SUBSCRIBERS
    rows = query.rows(_core(session), {"uuids": sorted(uuids), "emails": sorted(emails)})
    return [_Known(subscriber_id, uuid, email) for subscriber_id, uuid, email in rows]


def _subjects_filter() -> ColumnElement[bool]:
    """Bounces of the subscribers of the list parameter `ids` or with an address hash in the
    list parameter `hashes`: a superset of the subjects' histories, narrowed by `_subject_of`
    (which drops the bounces of other subscribers that share a hash).

    Only the two indexed columns are in the condition: with `subscriber_id IS NULL` beside the
    hash, SQLite walks the subscriber index through every anonymous bounce instead.
    """
    return or_(in_list(Bounce.subscriber_id, "ids"), in_list(Bounce.email_hash, "hashes"))


def _subject_of(
    subscriber_id: int | None, hashed: str, ids: Container[int | None]
) -> tuple[int | None, str] | None:
    """The subject (subscriber id, or None and the hash) a row of `_subjects_filter` belongs
    to, or None when it is another subscriber's bounce found only by its hash."""
    if subscriber_id is None:
        return (None, hashed)
    return (subscriber_id, "") if subscriber_id in ids else None


# The statements `record_many` runs for every batch, compiled once (see db.prepared): only
# their parameters change.
_SUBSCRIBERS_QUERY = (
    select(Subscriber.id, Subscriber.uuid, Subscriber.email)
    .where(
        or_(
            in_list(Subscriber.uuid, "uuids"),
            in_list(func.lower(Subscriber.email), "emails"),
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
        _subjects_filter(),
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


class _Subscribers:
    """Loaded subscribers, found by uuid or by normalized address."""

    def __init__(self, found: Sequence[_Known]) -> None:
        self.by_uuid = {sub.uuid: sub for sub in found}
        self.by_email = {sub.email.lower(): sub for sub in found}

    def match(self, uuid: str, email: str) -> _Known | None:
        """The subscriber with `uuid`, else with address `email`, else None."""
        found = self.by_uuid.get(uuid.strip().lower()) if uuid.strip() else None
        if found is None and email.strip():
            found = self.by_email.get(normalize_email(email))
        return found


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What the attribution gate makes of one event: whether it may act, how it was
    attributed (`meta["attribution"]`), and whom its evidence names."""

    acts: bool
    how: str
    why_not: str = ""
    # The subscriber (and campaign) the evidence names, instead of what the message claims.
    subscriber_uuid: str = ""
    campaign_uuid: str = ""
    # Look the subscriber up by the reported address only (the message's claim is not proof).
    by_address: bool = False


# Message-ID -> (subscriber uuid, campaign uuid) of campaign mail stmails sent.
SentMessages = Mapping[str, tuple[str, str]]


def _verdict(event: Event, evidence: Evidence, trust: MailboxTrust, sent: SentMessages) -> _Verdict:
    """Whether an event of an unauthenticated channel may act under `trust`."""
    if evidence.verp:
        return _Verdict(True, "verp", subscriber_uuid=event.subscriber_uuid)
    if trust == "any":
        return _Verdict(True, str(event.meta.get("attribution") or "any"))
    if trust == "verp":
        return _Verdict(False, "none", UNATTRIBUTED_NO_VERP, by_address=True)
    if evidence.signed:
        return _Verdict(True, "signed_message_id", by_address=True)
    for message_id in evidence.message_ids:
        match = sent.get(message_id)
        if match is not None:
            return _Verdict(True, "message_id", subscriber_uuid=match[0], campaign_uuid=match[1])
    return _Verdict(False, "none", UNATTRIBUTED_NOT_SENT, by_address=True)


def _sent_messages(session: Session, events: Sequence[Event]) -> dict[str, tuple[str, str]]:
    """The campaign messages stmails sent that the evidence of `events` refers to.

    Sends are found through their subscriber (the uuid the message claims, or one inside a
    Message-ID): the send ledger's indexes lead there, and the Message-ID must then match.
    """
    ids: set[str] = set()
    uuids: set[str] = set()
    for event in events:
        evidence = event.evidence
        if evidence is None or evidence.verp or not evidence.message_ids:
            continue
        ids.update(evidence.message_ids)
        claimed = event.subscriber_uuid.strip().lower()
        if claimed:
            uuids.add(claimed)
        for message_id in evidence.message_ids:
            uuids.update(_UUID.findall(message_id.lower()))
    if not ids or not uuids:
        return {}
    rows = session.execute(
        select(CampaignSend.message_id, Subscriber.uuid, Campaign.uuid)
        .join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
        .join(Campaign, Campaign.id == CampaignSend.campaign_id)
        .where(
            in_list(Subscriber.uuid, "uuids"),
            in_list(CampaignSend.message_id, "ids"),
        ),
        {"uuids": sorted(uuids), "ids": sorted(ids)},
    )
    return {message_id: (subscriber, campaign) for message_id, subscriber, campaign in rows}


@dataclass(frozen=True, slots=True)
class _Gated:
    """An event of an unauthenticated channel after the gate: whom and which campaign it is
    about, and why it may not act ("" when it may)."""

    subscriber: _Known | None
    address: str
    campaign_uuid: str
    unattributed: str
    notes: dict[str, str]


def _attribute(
    event: Event,
    evidence: Evidence,
    trust: MailboxTrust,
    found: _Subscribers,
    sent: SentMessages,
    acting: dict[str, int],
) -> _Gated:
    """The attribution gate for one event (see the module docstring); `acting` counts the
    events of each message that may act so far."""
    verdict = _verdict(event, evidence, trust, sent)
    reported = normalize_email(event.email)
    subscriber = found.match(event.subscriber_uuid, event.email)
    address = reported
    campaign_uuid = (verdict.campaign_uuid or event.campaign_uuid).strip().lower()
    why_not = verdict.why_not
    notes: dict[str, str] = {}
    if verdict.by_address:
        subscriber = found.match("", event.email)
    elif verdict.subscriber_uuid:
        subscriber = found.match(verdict.subscriber_uuid, "")
        if subscriber is None:
            why_not = UNATTRIBUTED_GONE
        elif reported != subscriber.email.lower():
            # The evidence names the subscriber the message went to: a different address in
            # the report (a forward) is not the one to act on, and on a report about several
            # recipients only that subscriber's may act.
            if evidence.sole or not reported:
                notes["reported_recipient"] = reported
                address = subscriber.email.lower()
            else:
                why_not = UNATTRIBUTED_OTHER_RECIPIENT
    if not why_not:
        acting[evidence.message] = acting.get(evidence.message, 0) + 1
        if acting[evidence.message] > MAX_ACTING_RECIPIENTS:
            why_not = UNATTRIBUTED_TOO_MANY
    if not why_not:
        notes["attribution"] = verdict.how
        if not address and subscriber is not None:
            address = subscriber.email.lower()
        return _Gated(subscriber, address, campaign_uuid, "", notes)
    # History only: filed under the address it reports, not a campaign it only claims.
    notes = {"attribution": "none", "unattributed": why_not}
    if campaign_uuid:
        notes["claimed_campaign"] = campaign_uuid
    return _Gated(found.match("", event.email), reported, "", why_not, notes)


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
    subscriber: _Known | None
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
    sent = _sent_messages(session, [e for _, e in valid])
    found = _Subscribers(
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
        address = normalize_email(event.email) or (subscriber.email.lower() if subscriber else "")
        campaign_uuid = event.campaign_uuid.strip().lower()
        unattributed = ""
        notes: dict[str, str] = {}
        if event.evidence is not None:
            gated = _attribute(event, event.evidence, config.mailbox_trust, found, sent, acting)
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
            _sent_before(
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
        subject = _subject_of(subscriber_id, hashed, subscriber_ids)
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
    strongest: dict[int, tuple[_Known, str, BounceAction]] = {}
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
        _act_on_many(
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


def _recent_campaigns_sent(
    session: Session, subscriber_id: int | None, before: datetime, limit: int
) -> list[str]:
    if subscriber_id is None or limit <= 0:
        return []
    query = (
        select(Campaign.uuid)
        .join(CampaignSend, CampaignSend.campaign_id == Campaign.id)
        .where(
            CampaignSend.subscriber_id == subscriber_id,
            CampaignSend.status == "sent",
            CampaignSend.sent_at <= before,
        )
        .order_by(CampaignSend.sent_at.desc(), CampaignSend.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def _sent_before(
    session: Session, subscriber_id: int | None, before: datetime, limit: int
) -> Callable[[], list[str]]:
    """A deferred `_recent_campaigns_sent` query (run only when escalation needs it)."""
    return lambda: _recent_campaigns_sent(session, subscriber_id, before, limit)


def _act_on_many(
    session: Session,
    targets: Sequence[tuple[Subscriber, str, BounceAction]],
    now: datetime,
) -> set[int]:
    """Apply each (subscriber, address hash, action), with one UPDATE per kind of change.

    Returns the ids of the subscribers that changed (rows already in the wanted state are not
    written again).
    """
    leaving = sorted(s.id for s, _, action in targets if action in ("unsubscribe", "blocklist"))
    blocked = [s for s, _, action in targets if action == "blocklist"]
    changed: set[int] = set()
    if leaving:
        changed.update(
            session.scalars(
                update(SubscriberList)
                .where(
                    SubscriberList.subscriber_id.in_(leaving),
                    SubscriberList.status != "unsubscribed",
                )
                .values(status="unsubscribed", updated_at=now)
                .returning(SubscriberList.subscriber_id)
                .execution_options(synchronize_session=False)
            )
        )
    if blocked:
        changed.update(
            session.scalars(
                update(Subscriber)
                .where(
                    Subscriber.id.in_(sorted(s.id for s in blocked)),
                    Subscriber.status != "blocklisted",
                )
                .values(status="blocklisted", updated_at=now)
                .returning(Subscriber.id)
                .execution_options(synchronize_session=False)
            )
        )
        # Keep the loaded objects true to the database without writing them again.
        for subscriber in blocked:
            set_committed_value(subscriber, "status", "blocklisted")
            set_committed_value(subscriber, "updated_at", now)
    for subscriber, hashed, action in targets:
        if action == "delete":
            changed.add(subscriber.id)
            erase_subscriber(session, subscriber, hashed or email_hash(subscriber.email))
    return changed


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


@dataclass
class ReapplyResult:
    """What `reapply()` changed."""

    bounces: int = 0
    retyped: int = 0
    subjects: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0


# Subjects replayed per round of statements.
REAPPLY_CHUNK = 500


def reapply(
    session: Session,
    *,
    config: BounceConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> ReapplyResult:
    """Replay every bounce, oldest first, under the rules in force; the caller commits.

    Effective types are recomputed (reason overrides, escalation); for each subscriber the
    strongest action any of its bounces reaches is applied, and addresses that reach a hard or
    complaint rule are suppressed. Nothing is ever undone: a blocklisted subscriber stays
    blocklisted and suppressions stay, even if the new rules would not have made them. The
    result counts real changes only. `progress(done, total)` reports subjects replayed.
    """
    config = config or bounce_config(session)
    now = now or utcnow()
    result = ReapplyResult()
    subscriber_ids = session.scalars(
        select(Bounce.subscriber_id)
        .where(Bounce.subscriber_id.is_not(None), Bounce.attributed.is_(True))
        .distinct()
    )
    strangers = session.scalars(
        select(Bounce.email_hash)
        .where(Bounce.subscriber_id.is_(None), Bounce.email_hash != "", Bounce.attributed.is_(True))
        .distinct()
    )
    subjects: list[tuple[int | None, str]] = [(i, "") for i in subscriber_ids if i is not None]
    subjects += [(None, h) for h in strangers]
    for start in range(0, len(subjects), REAPPLY_CHUNK):
        _reapply_chunk(session, subjects[start : start + REAPPLY_CHUNK], config, now, result)
        if progress is not None:
            progress(min(start + REAPPLY_CHUNK, len(subjects)), len(subjects))
    result.subjects = len(subjects)
    session.flush()
    return result


def _reapply_chunk(
    session: Session,
    chunk: Sequence[tuple[int | None, str]],
    config: BounceConfig,
    now: datetime,
    result: ReapplyResult,
) -> None:
    ids = sorted(i for i, _ in chunk if i is not None)
    hashes = sorted(h for i, h in chunk if i is None)
    subscribers = {
        s.id: s for s in session.scalars(select(Subscriber).where(Subscriber.id.in_(ids)))
    }
    rows = session.execute(
        select(
            Bounce.id,
            Bounce.subscriber_id,
            Bounce.email_hash,
            Bounce.email,
            Bounce.type,
            Bounce.reason,
            Bounce.count_key,
            Bounce.created_at,
            Bounce.effective_type,
            Bounce.source,
        )
        .where(_subjects_filter(), Bounce.attributed.is_(True))
        .order_by(Bounce.created_at, Bounce.id),
        {"ids": ids, "hashes": hashes},
    ).all()
    known_ids = set(ids)
    by_subject: dict[tuple[int | None, str], list[Any]] = {}
    for row in rows:
        subject = _subject_of(row.subscriber_id, row.email_hash, known_ids)
        if subject is None:
            continue
        by_subject.setdefault(subject, []).append(row)
    retyped: list[dict[str, Any]] = []
    targets: list[tuple[Subscriber, str, BounceAction]] = []
    to_suppress: list[tuple[SuppressionReason, Any, int | None]] = []
    for (subscriber_id, _), history_rows in by_subject.items():
        subscriber = subscribers.get(subscriber_id) if subscriber_id is not None else None
        history: list[Fact] = []
        strongest: BounceAction = "none"
        first_suppression: tuple[SuppressionReason, Any, int | None] | None = None
        for row in history_rows:
            decision = decide(
                config,
                Fact(row.type, row.reason, row.count_key, row.created_at),
                history,
                _sent_before(session, subscriber_id, row.created_at, config.escalation_count),
            )
            if row.effective_type != decision.effective_type:
                retyped.append({"id": row.id, "effective_type": decision.effective_type})
            history.append(
                Fact(row.type, row.reason, row.count_key, row.created_at, decision.effective_type)
            )
            if ACTION_STRENGTH[decision.action] > ACTION_STRENGTH[strongest]:
                strongest = decision.action
            if decision.suppress_reason is not None and first_suppression is None:
                first_suppression = (decision.suppress_reason, row, subscriber_id)
        if subscriber is not None and strongest != "none":
            targets.append((subscriber, email_hash(subscriber.email), strongest))
        if first_suppression is not None:
            to_suppress.append(first_suppression)
    result.bounces += len(rows)
    if retyped:
        session.execute(update(Bounce), retyped)
        result.retyped += len(retyped)
    changed = _act_on_many(session, targets, now)
    deleted = set()
    for subscriber, _, action in targets:
        if subscriber.id in changed:
            result.actions[action] = result.actions.get(action, 0) + 1
        if action == "delete":
            deleted.add(subscriber.id)
    entries = []
    for reason, row, subscriber_id in to_suppress:
        address = row.email if "@" in row.email and subscriber_id not in deleted else None
        if row.email_hash:
            entries.append(
                suppression.NewSuppression(
                    hashed=row.email_hash,
                    reason=reason,
                    email=address,
                    source=row.source,
                    description=f"bounce {row.id}: {reason}, reapplied",
                )
            )
    result.suppressed += suppression.add_many(session, entries, now=now)


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
    # The recipient's domain (exact, any case; kept when the address was erased).
    domain: str | None = None
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
    # False for a bounce from a mailbox that was only recorded (meta["unattributed"]: why).
    attributed: bool = True


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
    if filters.domain:
        conditions.append(Bounce.domain == filters.domain.strip().lower().lstrip("@"))
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
    if order_by == "campaign_name" or per_page is None:
        query = _filtered(_row_query(), filters).order_by(*terms)
        rows = [_row(r) for r in session.execute(paged(query, page, per_page))]
        return Page(rows, int(total), page, per_page)
    # The page's ids first, from the bounces' own indexes: a deep page then skips its rows
    # without joining each skipped one to its subscriber and campaign.
    ids = list(
        session.scalars(
            paged(_filtered(select(Bounce.id), filters).order_by(*terms), page, per_page)
        )
    )
    if not ids:
        return Page([], int(total), page, per_page)
    query = _row_query().where(Bounce.id.in_(ids)).order_by(*terms)
    rows = [_row(r) for r in session.execute(query)]
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

    Their subscriptions become unsubscribed. Unattributed bounces (which anybody can send to a
    bounce mailbox) do not count. Returns the number of subscribers blocklisted now.
    """
    now = now or utcnow()
    bounced = select(Bounce.subscriber_id).where(
        Bounce.subscriber_id.is_not(None), Bounce.attributed.is_(True)
    )
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
        attributed=bool(bounce.attributed),
    )
