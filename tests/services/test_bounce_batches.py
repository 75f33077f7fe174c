"""record_batch() gives exactly what record() gives, event by event, on varied sequences:
subscribers and strangers, all three types, campaigns and days, duplicates inside and across
batches, actions (blocklist), suppressions and soft-bounce escalation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.event import Event
from stmails.db.models import Bounce, Campaign, Subscriber, Suppression
from stmails.services import bounces
from stmails.services.bounce_batches import record_batch
from stmails.services.bounces import RecordError, RecordResult

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _world(session: Session, domain: str) -> tuple[list[Subscriber], list[Campaign]]:
    people = [Subscriber(email=f"s{i}@{domain}", name=f"S{i}") for i in range(5)]
    campaigns = [Campaign(name=f"C{i}", subject="s") for i in range(4)]
    session.add_all([*people, *campaigns])
    session.commit()
    return people, campaigns


def _events(
    seed: int, domain: str, people: list[Subscriber], campaigns: list[Campaign]
) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for _ in range(60):
        who = rng.randrange(8)
        by_uuid = who < 5 and rng.random() < 0.3
        event = Event(
            source=f"test-{domain[0]}",
            type=rng.choice(["soft", "soft", "soft", "hard", "complaint"]),
            email="" if by_uuid else (f"s{who}@{domain}" if who < 5 else f"x{who}@{domain}"),
            subscriber_uuid=people[who].uuid if by_uuid else "",
            campaign_uuid=rng.choice([c.uuid for c in campaigns] + ["", ""]),
            reason=rng.choice(["undefined", "mailboxfull", "userunknown"]),
            event_id=str(rng.randrange(45)),
            occurred_at=NOW - timedelta(days=rng.randrange(5)) if rng.random() < 0.8 else None,
        )
        events.append(event)
    return events


def _outcome(result: RecordResult | RecordError) -> tuple[Any, ...]:
    if isinstance(result, RecordError):
        return ("error", str(result))
    return (result.duplicate, result.counted, result.action_taken, result.suppressed,
            result.effective_type, result.subscriber_id is not None)  # fmt: skip


def _state(session: Session, domain: str) -> dict[str, Any]:
    def norm(text: str | None) -> str | None:
        return text.replace(domain, "D") if text else text

    rows = session.execute(
        select(Bounce.dedup_key, Bounce.email, Bounce.effective_type, Bounce.count_key,
               Subscriber.email)
        .outerjoin(Subscriber, Subscriber.id == Bounce.subscriber_id)
        .where(Bounce.email.like(f"%{domain}") | Subscriber.email.like(f"%{domain}"))
    ).all()  # fmt: skip
    statuses = session.execute(
        select(Subscriber.email, Subscriber.status).where(Subscriber.email.like(f"%{domain}"))
    ).all()
    suppressed = session.execute(
        select(Suppression.email, Suppression.reason).where(Suppression.email.like(f"%{domain}"))
    ).all()
    return {
        "bounces": sorted(
            (
                key.split(":", 1)[1],
                norm(email),
                kind,
                "day" if ck.startswith("day:") else "c",
                norm(sub),
            )
            for key, email, kind, ck, sub in rows
        ),
        "subscribers": sorted((norm(e), s) for e, s in statuses),
        "suppressions": sorted((norm(e), r) for e, r in suppressed),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_match_one_by_one(session_maker: sessionmaker[Session], seed: int) -> None:
    with session_maker() as session:
        people_a, campaigns_a = _world(session, "a.example")
        people_b, campaigns_b = _world(session, "b.example")
        events_a = _events(seed, "a.example", people_a, campaigns_a)
        events_b = _events(seed, "b.example", people_b, campaigns_b)

    one_by_one: list[tuple[Any, ...]] = []
    for event in events_a:
        with session_maker() as session:
            try:
                one_by_one.append(_outcome(bounces.record(session, event, now=NOW)))
                session.commit()
            except RecordError as exc:
                one_by_one.append(_outcome(exc))

    batched: list[tuple[Any, ...]] = []
    rng = random.Random(seed)
    start = 0
    while start < len(events_b):
        size = rng.choice([1, 3, 7, 20])
        with session_maker() as session:
            results = record_batch(session, events_b[start : start + size], now=NOW)
            session.commit()
        batched.extend(_outcome(r) for r in results)
        start += size

    assert batched == one_by_one
    with session_maker() as session:
        assert _state(session, "b.example") == _state(session, "a.example")
        # The sequences did exercise the interesting paths.
        assert any(o[2] == "blocklist" for o in one_by_one)
        assert any(o[0] for o in one_by_one)
        assert any(o[3] for o in one_by_one)
