"""The sunset policy and its re-engagement series (`hygiene.sunset`, off until enabled).

States (`subscriber_hygiene.state`): `active` → `reengaging` → `reengaged` | `sunset`.

- `active` or `reengaged` → `reengaging`: no open or click by a person (machine opens do not
  count) for over `reengage_after_days` (default 90). The clock starts at the last engagement,
  else when they joined, and restarts when an admin undoes a transition.
- While `reengaging`, the series is sent: `mails` messages of the transactional template
  `template_id`, `spacing_days` apart, through the normal sending path (suppression checks,
  DKIM, bounces recorded).
- `reengaging` → `reengaged`: an open or click by a person after the series started.
- `reengaging` → `sunset`: the series is over (`spacing_days` after its last mail) without a
  response, and there has been no engagement for over `sunset_after_days` (default 180). The
  configured `action` applies: `unsubscribe` (from every list), `suppress` (the address, on
  the global suppression list) or `tag` (only the state).

Every transition is a row of `hygiene_transitions` with its reason and action, logged, shown
by `GET /api/hygiene/transitions`, and can be undone (`undo`): the state goes back, the
subscriptions or the suppression are restored, and the subscriber's clock restarts.
`preview` is the dry run: the same decisions, nothing written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import (
    HygieneTransition,
    MailingList,
    Subscriber,
    SubscriberHygiene,
    SubscriberList,
    Suppression,
)
from stmails.db.types import email_hash, utcnow
from stmails.services import settings as settings_service
from stmails.services import suppression
from stmails.services.errors import Conflict, NotFound
from stmails.services.hygiene.risk import last_engaged

log = logging.getLogger(__name__)

__all__ = [
    "Mailer",
    "Move",
    "RunReport",
    "SunsetConfig",
    "plan",
    "preview",
    "record_transition",
    "run",
    "sunset_config",
    "transitions",
    "undo",
]

# Sends the re-engagement mail to subscribers (ids) in the caller's session; returns the ids
# it was sent to (the others were refused: suppressed, blocklisted, ...).
Mailer = Callable[[Session, Sequence[int]], set[int]]
CHUNK = 5000


@dataclass(frozen=True)
class SunsetConfig:
    """`hygiene.sunset` as the policy uses it."""

    enabled: bool = False
    reengage_after_days: int = 90
    sunset_after_days: int = 180
    template_id: int | None = None
    mails: int = 3
    spacing_days: int = 7
    action: str = "tag"
    max_per_run: int = 10000

    @classmethod
    def from_setting(cls, value: dict[str, Any]) -> SunsetConfig:
        """From the validated setting."""
        return cls(
            enabled=bool(value["enabled"]),
            reengage_after_days=int(value["reengage_after_days"]),
            sunset_after_days=int(value["sunset_after_days"]),
            template_id=value["template_id"],
            mails=int(value["mails"]),
            spacing_days=int(value["spacing_days"]),
            action=str(value["action"]),
            max_per_run=int(value["max_per_run"]),
        )


def sunset_config(session: Session) -> SunsetConfig:
    """The policy's settings as stored now."""
    return SunsetConfig.from_setting(settings_service.get_valid(session, "hygiene.sunset"))


@dataclass(frozen=True)
class Move:
    """A transition the policy decides: who, from and to which state, and why."""

    subscriber_id: int
    email: str
    from_state: str
    to_state: str
    reason: str
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        """For the API (the dry run)."""
        return {
            "subscriber_id": self.subscriber_id,
            "email": self.email,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reason": self.reason,
            "action": self.action,
        }


@dataclass
class _Subject:
    id: int
    email: str
    joined_at: datetime
    state: str
    state_at: datetime | None
    sent: int
    last_sent_at: datetime | None


@dataclass
class Plan:
    """What the policy would do now: the transitions, and who is due the next mail."""

    moves: list[Move] = field(default_factory=list)
    mail_due: list[int] = field(default_factory=list)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _receives_mail() -> Any:
    """The subscriber is on a list that mails them: confirmed, or unconfirmed on a single
    opt-in list (who unsubscribed everywhere, or never confirmed, is never re-engaged)."""
    return (
        select(SubscriberList.subscriber_id)
        .join(MailingList, MailingList.id == SubscriberList.list_id)
        .where(
            SubscriberList.subscriber_id == Subscriber.id,
            (SubscriberList.status == "confirmed")
            | ((SubscriberList.status == "unconfirmed") & (MailingList.optin == "single")),
        )
        .exists()
    )


def _subjects(session: Session, after: int, limit: int) -> list[_Subject]:
    rows = session.execute(
        select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.created_at,
            SubscriberHygiene.state,
            SubscriberHygiene.state_at,
            SubscriberHygiene.reengage_sent,
            SubscriberHygiene.reengage_last_at,
        )
        .outerjoin(SubscriberHygiene, SubscriberHygiene.subscriber_id == Subscriber.id)
        .where(Subscriber.id > after, Subscriber.status == "enabled", _receives_mail())
        .order_by(Subscriber.id)
        .limit(limit)
    )
    return [
        _Subject(sid, email, joined, state or "active", _aware(at), sent or 0, _aware(last))
        for sid, email, joined, state, at, sent, last in rows
    ]


def _day(value: datetime) -> str:
    return value.date().isoformat()


def _decide(
    subject: _Subject, engaged: datetime | None, config: SunsetConfig, now: datetime
) -> tuple[Move | None, bool]:
    """The subject's transition (or None), and whether the next mail of the series is due."""
    state = subject.state
    if state == "sunset":
        return None, False
    # The clock: the last engagement by a person, else joining; entering `active` (an admin's
    # undo) or `reengaged` restarts it.
    marks = [engaged, subject.joined_at]
    if state in ("active", "reengaged"):
        marks.append(subject.state_at)
    since = max(d for d in marks if d is not None)
    idle = (now - since).days
    last = (
        f"last open or click by a person {_day(engaged)}" if engaged else "never opened or clicked"
    )
    if state in ("active", "reengaged"):
        if idle > config.reengage_after_days:
            reason = f"{last}; {idle} days without engagement (over {config.reengage_after_days})"
            return Move(subject.id, subject.email, state, "reengaging", reason), False
        return None, False
    # reengaging
    started = subject.state_at or now
    if engaged is not None and engaged > started:
        reason = (
            f"opened or clicked on {_day(engaged)}, after the re-engagement series started "
            f"{_day(started)}"
        )
        return Move(subject.id, subject.email, state, "reengaged", reason), False
    spacing = timedelta(days=config.spacing_days)
    if subject.sent < config.mails:
        due = subject.last_sent_at is None or now - subject.last_sent_at >= spacing
        return None, due
    series_over = (subject.last_sent_at or started) + spacing <= now
    if series_over and idle > config.sunset_after_days:
        reason = (
            f"{last}; {idle} days without engagement (over {config.sunset_after_days}) and no "
            f"response to the re-engagement series ({subject.sent} mails since {_day(started)})"
        )
        return Move(subject.id, subject.email, state, "sunset", reason, config.action), False
    return None, False


def plan(session: Session, config: SunsetConfig, now: datetime | None = None) -> Plan:
    """What the policy decides now for every enabled subscriber (at most `max_per_run`
    transitions); reads only."""
    now = now or utcnow()
    out = Plan()
    after = 0
    while len(out.moves) < config.max_per_run:
        subjects = _subjects(session, after, CHUNK)
        if not subjects:
            break
        after = subjects[-1].id
        ids = [s.id for s in subjects]
        engaged = last_engaged(session.connection(), lambda column, ids=ids: column.in_(ids))
        for subject in subjects:
            move, due = _decide(subject, engaged.get(subject.id), config, now)
            if move is not None and len(out.moves) < config.max_per_run:
                out.moves.append(move)
            elif due:
                out.mail_due.append(subject.id)
    return out


def preview(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """The dry run: who would move and why, and who is due a re-engagement mail, with the
    settings as stored (whether or not the policy is enabled)."""
    config = sunset_config(session)
    found = plan(session, config, now)
    counts: dict[str, int] = {}
    for move in found.moves:
        counts[move.to_state] = counts.get(move.to_state, 0) + 1
    return {
        "enabled": config.enabled,
        "action": config.action,
        "counts": counts,
        "mail_due": len(found.mail_due),
        "moves": [m.to_dict() for m in found.moves],
    }


def _row(session: Session, subscriber_id: int) -> SubscriberHygiene:
    row = session.get(SubscriberHygiene, subscriber_id)
    if row is None:
        row = SubscriberHygiene(subscriber_id=subscriber_id, state="active")
        session.add(row)
    return row


def _apply_action(session: Session, move: Move, now: datetime) -> dict[str, Any]:
    """Applies a sunset's action; returns what undoing it needs."""
    if move.action == "unsubscribe":
        memberships = list(
            session.scalars(
                select(SubscriberList).where(
                    SubscriberList.subscriber_id == move.subscriber_id,
                    SubscriberList.status != "unsubscribed",
                )
            )
        )
        before = {str(m.list_id): m.status for m in memberships}
        for membership in memberships:
            membership.status = "unsubscribed"
        return {"subscriptions": before}
    if move.action == "suppress":
        entry, created = suppression.add(
            session,
            reason="manual",
            email=move.email,
            source="sunset",
            description="sunset policy: no response to re-engagement",
            now=now,
        )
        return {"suppression_id": entry.id if created else None}
    return {}


def record_transition(
    session: Session, move: Move, actor: str, now: datetime, meta: dict[str, Any]
) -> HygieneTransition:
    transition = HygieneTransition(
        subscriber_id=move.subscriber_id,
        email=move.email,
        from_state=move.from_state,
        to_state=move.to_state,
        reason=move.reason[:2000],
        action=move.action,
        actor=actor,
        meta=meta,
        created_at=now,
    )
    session.add(transition)
    log.info(
        "hygiene: subscriber %s %s -> %s (%s)%s",
        move.subscriber_id, move.from_state, move.to_state, move.reason,
        f", action {move.action}" if move.action else "",
    )  # fmt: skip
    return transition


def apply(
    session: Session, move: Move, *, actor: str = "scheduler", now: datetime | None = None
) -> HygieneTransition:
    """Makes `move` (its state, its action, its record); the caller commits."""
    now = now or utcnow()
    row = _row(session, move.subscriber_id)
    row.state = move.to_state
    row.state_at = now
    if move.to_state == "reengaging":
        row.reengage_sent = 0
        row.reengage_last_at = None
    meta = _apply_action(session, move, now) if move.to_state == "sunset" else {}
    return record_transition(session, move, actor, now, meta)


@dataclass
class RunReport:
    """What one run of the policy did."""

    moved: dict[str, int] = field(default_factory=dict)
    mailed: int = 0
    refused: int = 0

    def to_dict(self) -> dict[str, Any]:
        """For the scheduler's record."""
        return {"moved": self.moved, "mailed": self.mailed, "refused": self.refused}


def run(session: Session, mailer: Mailer | None, now: datetime | None = None) -> RunReport:
    """One run of the policy (nothing when it is disabled): the transitions, then the
    re-engagement mails that are due; the caller commits. Without a `mailer` no mail goes out
    (and those due stay due)."""
    now = now or utcnow()
    config = sunset_config(session)
    report = RunReport()
    if not config.enabled:
        return report
    decided = plan(session, config, now)
    for move in decided.moves:
        apply(session, move, now=now)
        report.moved[move.to_state] = report.moved.get(move.to_state, 0) + 1
    # Who just started the series gets its first mail in this run.
    due = decided.mail_due + [m.subscriber_id for m in decided.moves if m.to_state == "reengaging"]
    if config.mails > 0 and due and mailer is not None:
        session.flush()
        for start in range(0, len(due), 1000):
            part = due[start : start + 1000]
            sent = mailer(session, part)
            # The series moves on for a refused recipient too (suppressed, blocklisted): it
            # cannot respond, and asking again every run would never end.
            for subscriber_id in part:
                row = _row(session, subscriber_id)
                row.reengage_sent += 1
                row.reengage_last_at = now
            report.mailed += len(sent)
            report.refused += len(part) - len(sent)
    return report


def transitions(
    session: Session,
    *,
    subscriber_id: int | None = None,
    to_state: str = "",
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[HygieneTransition], int]:
    """Recorded transitions, the newest first, and how many match."""
    query = select(HygieneTransition)
    count = select(func.count()).select_from(HygieneTransition)
    if subscriber_id is not None:
        query = query.where(HygieneTransition.subscriber_id == subscriber_id)
        count = count.where(HygieneTransition.subscriber_id == subscriber_id)
    if to_state:
        query = query.where(HygieneTransition.to_state == to_state)
        count = count.where(HygieneTransition.to_state == to_state)
    rows = session.scalars(
        query.order_by(HygieneTransition.id.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return list(rows), int(session.scalar(count) or 0)


def undo(
    session: Session, transition_id: int, *, actor: str, now: datetime | None = None
) -> HygieneTransition:
    """Undoes a transition: the subscriber goes back to its earlier state (its clock restarts)
    and a sunset's action is reversed; the undo is recorded as a transition of its own. The
    caller commits. NotFound, or Conflict when it was undone already or is not the
    subscriber's latest."""
    now = now or utcnow()
    transition = session.get(HygieneTransition, transition_id)
    if transition is None:
        raise NotFound(f"no transition {transition_id}")
    if transition.undone_at is not None:
        raise Conflict("id", "this transition was undone already")
    if transition.action == "undo":
        raise Conflict("id", "an undo cannot be undone; the policy decides again")
    if transition.subscriber_id is None:
        raise Conflict("id", "the subscriber was deleted")
    latest = session.scalar(
        select(func.max(HygieneTransition.id)).where(
            HygieneTransition.subscriber_id == transition.subscriber_id,
            HygieneTransition.undone_at.is_(None),
            HygieneTransition.action != "undo",
        )
    )
    if latest != transition.id:
        raise Conflict("id", "only the subscriber's latest transition can be undone")
    meta = dict(transition.meta or {})
    for list_id, status in dict(meta.get("subscriptions") or {}).items():
        membership = session.get(SubscriberList, (transition.subscriber_id, int(list_id)))
        if membership is not None:
            membership.status = status
    previous_status = meta.get("subscriber_status")
    if previous_status:
        subscriber = session.get(Subscriber, transition.subscriber_id)
        if subscriber is not None and subscriber.status == "blocklisted":
            subscriber.status = str(previous_status)
    suppression_id = meta.get("suppression_id")
    if suppression_id:
        entry = session.get(Suppression, int(suppression_id))
        if entry is not None and entry.email_hash == email_hash(transition.email):
            session.delete(entry)
    if transition.from_state != transition.to_state:
        row = _row(session, transition.subscriber_id)
        row.state = transition.from_state
        row.state_at = now
        row.reengage_sent = 0
        row.reengage_last_at = None
    transition.undone_at = now
    back = Move(
        transition.subscriber_id,
        transition.email,
        transition.to_state,
        transition.from_state,
        f"undo of transition {transition.id} by {actor}",
        "undo",
    )
    return record_transition(session, back, actor, now, {"undoes": transition.id})
