"""`reapply()`: replay the whole history under the rules in force (`stmails bounces reapply`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stmails.db.models import Bounce, Subscriber
from stmails.db.types import email_hash, utcnow
from stmails.services import suppression
from stmails.services.bounces.actions import act_on_many
from stmails.services.bounces.history import sent_before, subject_of, subjects_filter
from stmails.services.bounces.rules import ACTION_STRENGTH, Fact, decide
from stmails.services.settings import BounceAction, BounceConfig, bounce_config
from stmails.services.suppression import SuppressionReason


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
        .where(subjects_filter(), Bounce.attributed.is_(True))
        .order_by(Bounce.created_at, Bounce.id),
        {"ids": ids, "hashes": hashes},
    ).all()
    known_ids = set(ids)
    by_subject: dict[tuple[int | None, str], list[Any]] = {}
    for row in rows:
        subject = subject_of(row.subscriber_id, row.email_hash, known_ids)
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
                sent_before(session, subscriber_id, row.created_at, config.escalation_count),
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
    changed = act_on_many(session, targets, now)
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
