"""The bounce-risk score of each subscriber: explainable, stored, recomputed as events arrive.

A score is the sum of the points of its factors (weights in `hygiene.risk`, defaults in
`config.RISK_WEIGHTS`); each stored score keeps its factors, `[{"code", "points", "value"}]`,
so a person can see why. The level is `high` above `high_above`, `medium` above
`medium_above`, else `low`.

What a score reads, per subscriber: the last open or click by a person (machine opens, flagged
by tracking, do not count), the day they joined, their soft and hard bounces and complaints
(attributed ones), their recipient domain's hard-bounce history (from the per-domain
analytics: hard bounces against mail sent there), and the last verification of the address
(result, reasons, date; without one, the offline role and disposable checks still apply).

`rescore(session, ids)` recomputes a few subscribers inside the caller's transaction (called
when a bounce, a complaint, an open or click, or a verification is recorded); `rescore_all`
recomputes everyone in chunks (the scheduler runs it daily) and writes only the scores that
changed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import Connection, Integer, Table, and_, column, func, select, table, text
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.in_list import in_list
from stmails.db.models import (
    Bounce,
    CampaignView,
    LinkClick,
    Subscriber,
    SubscriberHygiene,
)
from stmails.db.prepared import Prepared
from stmails.db.types import utcnow
from stmails.db.upsert import dialect_insert, upsert_rows
from stmails.services import settings as settings_service
from stmails.services.analytics.rollups import CHANGES, DOMAINS
from stmails.verify.disposable import default_disposable_domains
from stmails.verify.role import is_role

log = logging.getLogger(__name__)

__all__ = ["Facts", "RiskConfig", "Score", "rescore", "rescore_all", "risk_config", "score"]

CHUNK = 20_000
_HYGIENE = cast(Table, SubscriberHygiene.__table__)


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """`hygiene.risk` as the scorer uses it."""

    weights: Mapping[str, int]
    medium_above: int = 25
    high_above: int = 50
    soft_bounce_max: int = 3
    risky_domain_min_hard: int = 3
    risky_domain_percent: float = 5.0

    @classmethod
    def from_setting(cls, value: Mapping[str, Any]) -> RiskConfig:
        """From the validated setting."""
        return cls(
            weights=dict(value["weights"]),
            medium_above=int(value["medium_above"]),
            high_above=int(value["high_above"]),
            soft_bounce_max=int(value["soft_bounce_max"]),
            risky_domain_min_hard=int(value["risky_domain_min_hard"]),
            risky_domain_percent=float(value["risky_domain_percent"]),
        )

    def level(self, points: int) -> str:
        """The level of a score."""
        if points > self.high_above:
            return "high"
        if points > self.medium_above:
            return "medium"
        return "low"

    def domain_is_risky(self, sent: int, hard: int) -> bool:
        """Whether a domain with `hard` hard bounces against `sent` messages is risky."""
        if hard < self.risky_domain_min_hard:
            return False
        return sent <= 0 or hard * 100.0 >= self.risky_domain_percent * sent


def risk_config(session: Session) -> RiskConfig:
    """The scorer's settings as stored now (read once per transaction: the bounce and
    tracking writers rescore in every batch)."""
    return settings_service.per_transaction(
        session,
        "hygiene.risk",
        lambda: RiskConfig.from_setting(settings_service.get_valid(session, "hygiene.risk")),
    )


@dataclass(slots=True)
class Facts:
    """What the score of one subscriber is made of."""

    email: str
    joined_at: datetime
    last_engaged_at: datetime | None = None
    soft_bounces: int = 0
    hard_bounces: int = 0
    complaints: int = 0
    domain_sent: int = 0
    domain_hard: int = 0
    verify_result: str = ""
    verify_reasons: Sequence[str] = ()
    verified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """A score, its level and the factors that make it."""

    points: int
    level: str
    factors: list[dict[str, Any]]


_CATCH_ALL = frozenset({"catch_all", "accept_all"})


def score(facts: Facts, config: RiskConfig, now: datetime) -> Score:
    """The score of one subscriber (pure: no I/O)."""
    weights = config.weights
    factors: list[dict[str, Any]] = []
    points = 0

    # Inlined per factor rather than a helper per call: a full run scores millions.
    idle = (now - (facts.last_engaged_at or facts.joined_at)).days
    if idle > 30:
        code = (
            "inactive_180_days"
            if idle > 180
            else "inactive_90_days"
            if idle > 90
            else "inactive_30_days"
        )
        if weights[code]:
            since = (facts.last_engaged_at or facts.joined_at).date().isoformat()
            factors.append({"code": code, "points": weights[code], "value": since})
            points += weights[code]
    on_list = (now - facts.joined_at).days
    if on_list > 365:
        code = "on_list_730_days" if on_list > 730 else "on_list_365_days"
        if weights[code]:
            joined = facts.joined_at.date().isoformat()
            factors.append({"code": code, "points": weights[code], "value": joined})
            points += weights[code]
    for code, count, counted in (
        ("soft_bounce", facts.soft_bounces, min(facts.soft_bounces, config.soft_bounce_max)),
        ("hard_bounce", facts.hard_bounces, facts.hard_bounces),
        ("complaint", facts.complaints, facts.complaints),
    ):
        if count and weights[code] and counted:
            factors.append({"code": code, "points": weights[code] * counted, "value": count})
            points += weights[code] * counted
    local, _, domain = facts.email.rpartition("@")
    domain = domain.lower()
    if weights["risky_domain"] and config.domain_is_risky(facts.domain_sent, facts.domain_hard):
        history = {"domain": domain, "hard": facts.domain_hard, "sent": facts.domain_sent}
        factors.append(
            {"code": "risky_domain", "points": weights["risky_domain"], "value": history}
        )
        points += weights["risky_domain"]
    verified = facts.verified_at
    unverified = 10**6 if verified is None else (now - verified).days
    if unverified > 90:
        code = "unverified_180_days" if unverified > 180 else "unverified_90_days"
        if weights[code]:
            value = None if verified is None else verified.date().isoformat()
            factors.append({"code": code, "points": weights[code], "value": value})
            points += weights[code]
    reasons = facts.verify_reasons
    if weights["catch_all"] and reasons and not _CATCH_ALL.isdisjoint(reasons):
        factors.append({"code": "catch_all", "points": weights["catch_all"], "value": True})
        points += weights["catch_all"]
    if weights["disposable"] and (
        "disposable" in reasons or default_disposable_domains().is_disposable(domain)
    ):
        factors.append({"code": "disposable", "points": weights["disposable"], "value": domain})
        points += weights["disposable"]
    if weights["role"] and ("role" in reasons or is_role(local)):
        factors.append({"code": "role", "points": weights["role"], "value": local.lower()})
        points += weights["role"]
    result = facts.verify_result
    if result in ("invalid", "unknown"):
        code = f"verify_{result}"
        if weights[code]:
            factors.append({"code": code, "points": weights[code], "value": sorted(reasons)})
            points += weights[code]
    return Score(points, config.level(points), factors)


# -- reading the facts ----------------------------------------------------------------------


def last_engaged(connection: Connection, where: Any) -> dict[int, datetime]:
    """The last open or click by a person of each subscriber `where` selects."""
    out: dict[int, datetime] = {}
    for hits in (CampaignView, LinkClick):
        rows = connection.execute(
            select(hits.subscriber_id, func.max(hits.created_at))
            .where(where(hits.subscriber_id), hits.machine == "")
            .group_by(hits.subscriber_id)
        )
        for subscriber_id, at in rows:
            if at is None or subscriber_id is None:
                continue
            at = _aware(at)
            if subscriber_id not in out or at > out[subscriber_id]:
                out[subscriber_id] = at
    return out


def _aware(value: str | datetime) -> datetime:
    # SQLite hands aggregates back as text or naive datetimes, without the column type.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bounce_counts(connection: Connection, where: Any) -> dict[int, dict[str, int]]:
    """Attributed bounces and complaints of each subscriber `where` selects, by type."""
    out: dict[int, dict[str, int]] = {}
    rows = connection.execute(
        select(Bounce.subscriber_id, Bounce.effective_type, func.count())
        .where(where(Bounce.subscriber_id), Bounce.attributed)
        .group_by(Bounce.subscriber_id, Bounce.effective_type)
    )
    for subscriber_id, kind, count in rows:
        if subscriber_id is not None:
            out.setdefault(subscriber_id, {})[kind] = int(count)
    return out


def _domain_stats(
    connection: Connection, domains: Iterable[str] | None, *, pending: bool = True
) -> dict[str, tuple[int, int]]:
    """(messages sent, hard bounces) per recipient domain (all domains when None), all mail
    (campaigns and transactional) of all time: the folded rollup plus, with `pending`, the
    deltas not yet folded (services.analytics.rollups; folded every few seconds, and not
    indexed by domain: the incremental rescoring leaves them to the next full run)."""
    wanted = None if domains is None else sorted(set(domains))
    if wanted is not None and not wanted:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for source in (DOMAINS, CHANGES) if pending else (DOMAINS,):
        query = select(
            source.c.domain,
            func.sum(source.c.accepted + source.c.refused),
            func.sum(source.c.hard),
        ).group_by(source.c.domain)
        if wanted is not None:
            query = query.where(source.c.domain.in_(wanted))
        for domain, sent, hard in connection.execute(query):
            before = out.get(domain, (0, 0))
            out[domain] = (before[0] + int(sent or 0), before[1] + int(hard or 0))
    return out


def _domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()


@dataclass(slots=True)
class _Row:
    id: int
    email: str
    joined_at: datetime
    verify_result: str
    verify_reasons: list[str]
    verified_at: datetime | None
    # The stored score: (points, level, factors as stored: JSON text on SQLite, decoded on
    # PostgreSQL), or None when there is none.
    old: tuple[int, str, Any] | None


def _when(value: str | datetime | None) -> datetime | None:
    """A timestamp read without the column type's processing: SQLite's naive UTC text, or
    PostgreSQL's aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# `subscribers` under its alias in `_SUBSCRIBERS_SQL`, for the conditions (integers only).
_ALIAS = table("s", column("id", Integer))
_SUBSCRIBERS_SQL = (
    "SELECT s.id, s.email, s.created_at, h.verify_result, h.verify_reasons, h.verified_at,"
    " h.risk_score, h.risk_level, h.risk_factors, h.scored_at"
    " FROM subscribers s LEFT JOIN subscriber_hygiene h ON h.subscriber_id = s.id"
)


def _subscribers(connection: Connection, where: Any) -> list[_Row]:
    # Plain SQL: no column type processing (a regular expression per SQLite timestamp, JSON
    # decoding) on the way out, which costs more than the scoring; converted here instead.
    condition = where(_ALIAS.c.id).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    rows = connection.execute(text(f"{_SUBSCRIBERS_SQL} WHERE {condition} ORDER BY s.id"))
    out = []
    for sid, email, joined, result, reasons, verified, points, level, factors, scored in rows:
        old = None if scored is None else (points, level, factors)
        joined_at = _when(joined)
        assert joined_at is not None
        out.append(
            _Row(
                sid,
                email,
                joined_at,
                result or "",
                _json(reasons) if reasons and reasons != "[]" else [],
                _when(verified),
                old,
            )
        )
    return out


def _factors_text(factors: list[dict[str, Any]]) -> str:
    return json.dumps(factors)


def _unchanged(old: tuple[int, str, Any] | None, new: Score) -> bool:
    if old is None or old[0] != new.points or old[1] != new.level:
        return False
    stored = old[2]
    if isinstance(stored, str):
        # SQLite keeps the text as the JSON column wrote it: json.dumps, as `_factors_text`.
        return stored == _factors_text(new.factors) or _json(stored) == new.factors
    return bool(stored == new.factors)


def _score_rows(
    connection: Connection,
    rows: list[_Row],
    where: Any,
    domains: Mapping[str, tuple[int, int]],
    config: RiskConfig,
    now: datetime,
) -> list[tuple[int, Score]]:
    """The new scores of `rows` whose score or factors changed."""
    engaged = last_engaged(connection, where)
    bounces = _bounce_counts(connection, where)
    return _changes(rows, engaged, bounces, domains, config, now)


def _changes(
    rows: list[_Row],
    engaged: Mapping[int, datetime],
    bounces: Mapping[int, Mapping[str, int]],
    domains: Mapping[str, tuple[int, int]],
    config: RiskConfig,
    now: datetime,
) -> list[tuple[int, Score]]:
    changes = []
    no_counts: dict[str, int] = {}
    for row in rows:
        counts = bounces.get(row.id, no_counts)
        sent, hard = domains.get(_domain_of(row.email), (0, 0))
        result = score(
            Facts(
                row.email,
                row.joined_at,
                engaged.get(row.id),
                counts.get("soft", 0),
                counts.get("hard", 0),
                counts.get("complaint", 0),
                sent,
                hard,
                row.verify_result,
                row.verify_reasons,
                row.verified_at,
            ),
            config,
            now,
        )
        if not _unchanged(row.old, result):
            changes.append((row.id, result))
    return changes


# A new hygiene row's columns besides its score.
_NEW_ROW: Mapping[str, Any] = MappingProxyType(
    {
        "verify_result": "",
        "verify_reasons": [],
        "verified_at": None,
        "state": "active",
        "state_at": None,
        "reengage_sent": 0,
        "reengage_last_at": None,
    }
)
_SCORE_COLUMNS = ("risk_score", "risk_level", "risk_factors", "scored_at")


def _write(connection: Connection, changes: list[tuple[int, Score]], now: datetime) -> None:
    """Upserts the scores (a subscriber without a hygiene row gets one)."""
    upsert_rows(
        connection,
        _HYGIENE,
        ("subscriber_id", *_SCORE_COLUMNS),
        [(sid, new.points, new.level, new.factors, now) for sid, new in changes],
        key=("subscriber_id",),
        update=_SCORE_COLUMNS,
        fixed=_NEW_ROW,
    )


# The incremental rescoring runs in the bounce and tracking writers' transactions: its few
# statements are compiled once (db.prepared) and take their lists as one parameter.
_HYG = SubscriberHygiene
_INC_SUBSCRIBERS = Prepared(
    select(
        Subscriber.id,
        Subscriber.email,
        Subscriber.created_at,
        _HYG.verify_result,
        _HYG.verify_reasons,
        _HYG.verified_at,
        _HYG.risk_score,
        _HYG.risk_level,
        _HYG.risk_factors,
        _HYG.scored_at,
    )
    .outerjoin(_HYG, _HYG.subscriber_id == Subscriber.id)
    .where(in_list(Subscriber.id, "ids"))
)
_INC_ENGAGED = [
    Prepared(
        select(hits.subscriber_id, func.max(hits.created_at))
        .where(in_list(hits.subscriber_id, "ids"), hits.machine == "")
        .group_by(hits.subscriber_id)
    )
    for hits in (CampaignView, LinkClick)
]
_INC_BOUNCES = Prepared(
    select(Bounce.subscriber_id, Bounce.effective_type, func.count())
    .where(in_list(Bounce.subscriber_id, "ids"), Bounce.attributed)
    .group_by(Bounce.subscriber_id, Bounce.effective_type)
)
_INC_DOMAINS = Prepared(
    select(
        DOMAINS.c.domain,
        func.sum(DOMAINS.c.accepted + DOMAINS.c.refused),
        func.sum(DOMAINS.c.hard),
    )
    .where(in_list(DOMAINS.c.domain, "domains"))
    .group_by(DOMAINS.c.domain)
)


def _rescore_part(
    connection: Connection, ids: list[int], config: RiskConfig, now: datetime
) -> list[tuple[int, Score]]:
    """The changed scores of subscribers `ids` (a few: the writers' batches)."""
    params = {"ids": ids}
    rows = []
    for (
        sid,
        email,
        joined,
        result,
        reasons,
        verified,
        points,
        level,
        factors,
        scored,
    ) in _INC_SUBSCRIBERS.rows(connection, params):
        old = None if scored is None else (points, level, factors)
        joined_at = _when(joined)
        assert joined_at is not None
        rows.append(
            _Row(sid, email, joined_at, result or "", list(reasons or []), _when(verified), old)
        )
    if not rows:
        return []
    engaged: dict[int, datetime] = {}
    for statement in _INC_ENGAGED:
        for subscriber_id, at in statement.rows(connection, params):
            moment = _when(at)
            if moment is None or subscriber_id is None:
                continue
            if subscriber_id not in engaged or moment > engaged[subscriber_id]:
                engaged[subscriber_id] = moment
    bounces: dict[int, dict[str, int]] = {}
    for subscriber_id, kind, count in _INC_BOUNCES.rows(connection, params):
        bounces.setdefault(subscriber_id, {})[kind] = int(count)
    wanted = sorted({_domain_of(r.email) for r in rows})
    domains = {
        domain: (int(sent or 0), int(hard or 0))
        for domain, sent, hard in _INC_DOMAINS.rows(connection, {"domains": wanted})
    }
    return _changes(rows, engaged, bounces, domains, config, now)


def rescore(
    session: Session,
    subscriber_ids: Iterable[int | None],
    *,
    now: datetime | None = None,
    config: RiskConfig | None = None,
) -> int:
    """Recomputes the scores of `subscriber_ids` in the caller's transaction (it commits);
    returns how many changed."""
    ids = sorted({i for i in subscriber_ids if i is not None})
    if not ids:
        return 0
    now = now or utcnow()
    config = config or risk_config(session)
    connection = session.connection()
    total = 0
    for start in range(0, len(ids), 1000):
        changes = _rescore_part(connection, ids[start : start + 1000], config, now)
        _write(connection, changes, now)
        total += len(changes)
    return total


@dataclass(frozen=True)
class FullRun:
    """What a full rescoring did."""

    subscribers: int
    changed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """For the scheduler's record and the API."""
        return {"subscribers": self.subscribers, "changed": self.changed, "seconds": self.seconds}


def rescore_all(
    factory: sessionmaker[Session], *, now: datetime | None = None, chunk: int = CHUNK
) -> FullRun:
    """Recomputes every subscriber's score, one transaction per chunk of `chunk` subscribers
    (so a long run never holds SQLite's write lock for long); writes only changed scores."""
    started = time.monotonic()
    now = now or utcnow()
    with factory() as session:
        config = risk_config(session)
        domains = _domain_stats(session.connection(), None)
    last = 0
    seen = changed = 0
    while True:
        with factory() as session, session.begin():
            connection = session.connection()
            upper = connection.execute(
                select(func.max(Subscriber.id)).where(
                    Subscriber.id.in_(
                        select(Subscriber.id)
                        .where(Subscriber.id > last)
                        .order_by(Subscriber.id)
                        .limit(chunk)
                    )
                )
            ).scalar()
            if upper is None:
                break
            low, high = last, int(upper)

            def where(column: Any, low: int = low, high: int = high) -> Any:
                return and_(column > low, column <= high)

            rows = _subscribers(connection, where)
            changes = _score_rows(connection, rows, where, domains, config, now)
            _write(connection, changes, now)
            seen += len(rows)
            changed += len(changes)
            last = high
    run = FullRun(seen, changed, round(time.monotonic() - started, 3))
    log.info("risk scores: %d subscribers scored, %d changed, %.1f s", seen, changed, run.seconds)
    return run


def record_verification(
    session: Session,
    subscriber_id: int,
    result: str,
    reasons: Sequence[str],
    *,
    now: datetime | None = None,
    rescore_now: bool = True,
) -> None:
    """Stores a verification of the subscriber's address and rescores them (unless
    `rescore_now` is false: a bulk caller rescores its batch once); the caller commits."""
    now = now or utcnow()
    connection = session.connection()
    values = {
        "subscriber_id": subscriber_id,
        "risk_score": 0,
        "risk_level": "low",
        "risk_factors": [],
        "scored_at": None,
        "verify_result": result,
        "verify_reasons": list(reasons),
        "verified_at": now,
        "state": "active",
        "state_at": None,
        "reengage_sent": 0,
        "reengage_last_at": None,
    }
    statement = dialect_insert(connection, _HYGIENE).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["subscriber_id"],
        set_={"verify_result": result, "verify_reasons": list(reasons), "verified_at": now},
    )
    connection.execute(statement)
    if rescore_now:
        rescore(session, [subscriber_id], now=now)


def hygiene_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, SubscriberHygiene]:
    """The hygiene rows of `subscriber_ids` that exist, by subscriber id."""
    out: dict[int, SubscriberHygiene] = {}
    ids = list(subscriber_ids)
    for start in range(0, len(ids), 1000):
        part = ids[start : start + 1000]
        rows = session.scalars(
            select(SubscriberHygiene).where(SubscriberHygiene.subscriber_id.in_(part))
        )
        out.update((row.subscriber_id, row) for row in rows)
    return out


def factors_json(factors: Any) -> str:
    """The factors as compact JSON (exports)."""
    return json.dumps(factors, separators=(",", ":"), ensure_ascii=False)
