"""record_many() decides exactly as record() called once per event, in order."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.core.event import Event, EventType
from stmails.db.engine import make_engine, session_factory
from stmails.db.models import (
    Base,
    Bounce,
    Campaign,
    MailingList,
    Subscriber,
    SubscriberList,
    Suppression,
)
from stmails.services import settings
from stmails.services.bounces import RecordError, record, record_many

T0 = datetime(2026, 2, 1, tzinfo=UTC)
KINDS: list[EventType] = ["soft", "soft", "soft", "hard", "complaint"]
REASONS = ["userunknown", "mailboxfull", "expired", "blocked"]


def scenario(seed: int) -> tuple[list[str], list[Event]]:
    """Campaign uuids and a random, time-ordered run of events with some repeats."""
    rng = random.Random(seed)
    campaigns = [f"00000000-0000-4000-8000-{n:012d}" for n in range(6)]
    events: list[Event] = []
    for n in range(90):
        if events and rng.random() < 0.08:
            events.append(rng.choice(events))
            continue
        who = rng.randrange(8)
        events.append(
            Event(
                source=rng.choice(["api", "ses"]),
                type=rng.choice(KINDS),
                email=f"s{who}@example.org" if who < 6 else f"x{who}@example.net",
                campaign_uuid=rng.choice(campaigns) if rng.random() < 0.7 else "",
                reason=rng.choice(REASONS),
                event_id=f"e{n}",
                occurred_at=T0 + timedelta(hours=7 * n),
            )
        )
    return campaigns, events


def prepare(session: Session, campaigns: list[str]) -> None:
    settings.set_value(
        session,
        "bounce.actions",
        {
            "soft": {"count": 3, "action": "unsubscribe", "window_days": 4},
            "hard": {"count": 2, "action": "blocklist"},
            "complaint": {"count": 1, "action": "blocklist"},
        },
    )
    lists = [MailingList(name="a"), MailingList(name="b")]
    session.add_all(lists)
    for n in range(6):
        session.add(Subscriber(email=f"s{n}@example.org"))
    session.add_all(Campaign(uuid=u, name=u, subject="s") for u in campaigns)
    session.flush()
    for sub in session.scalars(select(Subscriber)):
        for mlist in lists:
            session.add(SubscriberList(subscriber_id=sub.id, list_id=mlist.id, status="confirmed"))
    session.commit()


def state(session: Session) -> dict[str, Any]:
    return {
        "bounces": sorted(
            session.execute(
                select(Bounce.dedup_key, Bounce.email, Bounce.effective_type, Bounce.count_key)
            ).all()
        ),
        "subscribers": sorted(session.execute(select(Subscriber.email, Subscriber.status)).all()),
        "subscriptions": sorted(
            session.execute(
                select(Subscriber.email, SubscriberList.list_id, SubscriberList.status).join(
                    Subscriber, Subscriber.id == SubscriberList.subscriber_id
                )
            ).all()
        ),
        "suppressions": sorted(
            session.execute(
                select(Suppression.email_hash, Suppression.email, Suppression.reason)
            ).all()
        ),
    }


def outcome(result: Any) -> tuple[Any, ...]:
    assert not isinstance(result, RecordError)
    return (
        result.duplicate,
        result.counted,
        result.action_taken,
        result.suppressed,
        result.effective_type,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_batches_equal_one_event_at_a_time(
    seed: int, fresh_database_url: Callable[[], str]
) -> None:
    campaigns, events = scenario(seed)
    results: list[list[tuple[Any, ...]]] = []
    states: list[dict[str, Any]] = []
    for batch_size in (1, 17):
        engine = make_engine(fresh_database_url())
        try:
            Base.metadata.create_all(engine)
            with session_factory(engine)() as session:
                prepare(session, campaigns)
                got: list[tuple[Any, ...]] = []
                for start in range(0, len(events), batch_size):
                    chunk = events[start : start + batch_size]
                    if batch_size == 1:
                        got.append(outcome(record(session, chunk[0])))
                    else:
                        got.extend(outcome(r) for r in record_many(session, chunk))
                    session.commit()
                results.append(got)
                states.append(state(session))
        finally:
            engine.dispose()
    assert results[0] == results[1]
    assert states[0] == states[1]
    # The scenario exercises the rules, not just storage.
    actions = {r[2] for r in results[0]}
    assert {"unsubscribe", "blocklist"} <= actions
    assert any(r[0] for r in results[0]) and any(r[3] for r in results[0])
