"""services.bounces.record(): storage, idempotency, counting, actions and suppression."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.core.event import Event, EventType
from stmails.db.models import (
    Bounce,
    Campaign,
    CampaignSend,
    MailingList,
    Subscriber,
    SubscriberList,
    Suppression,
)
from stmails.db.types import email_hash
from stmails.services import settings, suppression
from stmails.services.bounces import (
    RecordError,
    reapply,
    record,
    record_and_commit,
    record_many,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def subscriber(session: Session, email: str = "ana@example.org", lists: int = 2) -> Subscriber:
    sub = Subscriber(email=email, name="Ana")
    session.add(sub)
    session.flush()
    for n in range(lists):
        lst = MailingList(name=f"list {email} {n}")
        session.add(lst)
        session.flush()
        session.add(SubscriberList(subscriber_id=sub.id, list_id=lst.id, status="confirmed"))
    session.flush()
    return sub


def campaign(session: Session, name: str = "c") -> Campaign:
    camp = Campaign(name=name, subject=name)
    session.add(camp)
    session.flush()
    return camp


def event(
    kind: EventType = "hard",
    *,
    email: str = "ana@example.org",
    campaign_uuid: str = "",
    at: datetime = T0,
    **extra: Any,
) -> Event:
    return Event(
        source=extra.pop("source", "api"),
        type=kind,
        email=email,
        campaign_uuid=campaign_uuid,
        occurred_at=at,
        **extra,
    )


def rules(session: Session, **by_type: dict[str, Any]) -> None:
    current = settings.get(session, "bounce.actions")
    for kind, rule in by_type.items():
        current[kind].update(rule)
    settings.set_value(session, "bounce.actions", current)


def statuses(session: Session, sub_id: int) -> set[str]:
    return set(
        session.scalars(select(SubscriberList.status).where(SubscriberList.subscriber_id == sub_id))
    )


def bounce_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Bounce)) or 0


def test_hard_bounce_blocklists_and_suppresses_by_default(session: Session) -> None:
    sub = subscriber(session)
    result = record(session, event("hard", source="ses", reason="userunknown"))
    session.commit()
    assert not result.duplicate and result.counted
    assert (result.subscriber_id, result.action_taken, result.suppressed) == (
        sub.id,
        "blocklist",
        True,
    )
    session.refresh(sub)
    assert sub.status == "blocklisted"
    assert statuses(session, sub.id) == {"unsubscribed"}
    entry = suppression.lookup(session, "ANA@example.org")
    assert entry is not None
    assert (entry.reason, entry.source, entry.email) == ("hard_bounce", "ses", "ana@example.org")


def test_complaint_blocklists_and_suppresses_as_complaint(session: Session) -> None:
    sub = subscriber(session)
    result = record(session, event("complaint", feedback_type="abuse"))
    assert result.action_taken == "blocklist"
    assert sub.status == "blocklisted"
    entry = suppression.lookup(session, sub.email)
    assert entry is not None and entry.reason == "complaint"


def test_soft_bounces_by_default_take_no_action_and_do_not_suppress(session: Session) -> None:
    sub = subscriber(session)
    c1, c2 = campaign(session, "one"), campaign(session, "two")
    first = record(session, event("soft", campaign_uuid=c1.uuid))
    second = record(session, event("soft", campaign_uuid=c2.uuid, at=T0 + timedelta(days=1)))
    assert first.counted and second.counted
    assert second.action_taken == "none" and not second.suppressed
    assert sub.status == "enabled"
    assert statuses(session, sub.id) == {"confirmed"}
    assert not suppression.is_suppressed(session, sub.email)


def test_unsubscribe_action_unsubscribes_every_list_at_the_threshold(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "unsubscribe"})
    sub = subscriber(session, lists=3)
    c1, c2 = campaign(session, "one"), campaign(session, "two")
    assert record(session, event("soft", campaign_uuid=c1.uuid)).action_taken == "none"
    assert statuses(session, sub.id) == {"confirmed"}
    result = record(session, event("soft", campaign_uuid=c2.uuid))
    assert result.action_taken == "unsubscribe"
    assert statuses(session, sub.id) == {"unsubscribed"}
    assert sub.status == "enabled"


def test_a_campaign_counts_once_however_many_bounces_it_caused(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "blocklist"})
    sub = subscriber(session)
    camp = campaign(session)
    # A delay notice, then the final failure of the same mail: one unit of counting.
    first = record(session, event("soft", campaign_uuid=camp.uuid, reason="expired"))
    second = record(
        session,
        event("soft", campaign_uuid=camp.uuid, reason="mailboxfull", at=T0 + timedelta(hours=5)),
    )
    assert first.counted and not second.counted
    assert second.action_taken == "none"
    assert sub.status == "enabled"
    assert bounce_count(session) == 2


def test_without_a_campaign_one_bounce_per_day_counts(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "blocklist"})
    sub = subscriber(session)
    morning = record(session, event("soft", at=T0))
    evening = record(session, event("soft", at=T0 + timedelta(hours=12)))
    assert morning.counted and not evening.counted
    assert sub.status == "enabled"
    next_day = record(session, event("soft", at=T0 + timedelta(days=1)))
    assert next_day.counted and next_day.action_taken == "blocklist"
    assert sub.status == "blocklisted"


def test_window_days_counts_only_recent_bounces(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "unsubscribe", "window_days": 7})
    sub = subscriber(session)
    c1, c2, c3 = (campaign(session, n) for n in ("a", "b", "c"))
    record(session, event("soft", campaign_uuid=c1.uuid, at=T0))
    outside = record(session, event("soft", campaign_uuid=c2.uuid, at=T0 + timedelta(days=10)))
    assert outside.action_taken == "none"
    assert statuses(session, sub.id) == {"confirmed"}
    inside = record(session, event("soft", campaign_uuid=c3.uuid, at=T0 + timedelta(days=15)))
    assert inside.action_taken == "unsubscribe"


def test_window_zero_counts_all_time(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "unsubscribe", "window_days": 0})
    sub = subscriber(session)
    c1, c2 = campaign(session, "a"), campaign(session, "b")
    record(session, event("soft", campaign_uuid=c1.uuid, at=T0 - timedelta(days=900)))
    assert record(session, event("soft", campaign_uuid=c2.uuid)).action_taken == "unsubscribe"
    assert statuses(session, sub.id) == {"unsubscribed"}


def test_hard_count_above_one_waits_for_the_count(session: Session) -> None:
    rules(session, hard={"count": 2, "action": "blocklist"})
    sub = subscriber(session)
    c1, c2 = campaign(session, "a"), campaign(session, "b")
    first = record(session, event("hard", campaign_uuid=c1.uuid))
    assert (first.action_taken, first.suppressed) == ("none", False)
    assert sub.status == "enabled"
    second = record(session, event("hard", campaign_uuid=c2.uuid))
    assert (second.action_taken, second.suppressed) == ("blocklist", True)


def test_delete_removes_the_subscriber_and_keeps_only_the_hash(session: Session) -> None:
    rules(session, complaint={"count": 1, "action": "delete"})
    sub = subscriber(session, email="Bob@Example.org")
    sub_id = sub.id
    record(session, event("soft", email="bob@example.org", diagnostic="4.2.2 bob@example.org full"))
    result = record(
        session,
        event(
            "complaint",
            email="bob@example.org",
            diagnostic="complaint about <BOB@example.org>",
            meta={"ip": "192.0.2.1"},
        ),
    )
    session.commit()
    assert result.action_taken == "delete" and result.suppressed
    assert result.subscriber_id is None
    assert session.get(Subscriber, sub_id) is None
    assert session.scalar(select(func.count()).select_from(SubscriberList)) == 0
    hashed = email_hash("bob@example.org")
    rows = session.scalars(select(Bounce)).all()
    assert len(rows) == 2
    for row in rows:
        assert (row.subscriber_id, row.email, row.email_hash, row.meta) == (
            None,
            hashed,
            hashed,
            {},
        )
        assert "bob" not in row.diagnostic.lower()
    entries = session.scalars(select(Suppression)).all()
    assert [(e.email, e.email_hash) for e in entries] == [(None, hashed)]
    assert suppression.is_suppressed(session, "BOB@example.org")
    # A later bounce for the erased address is stored by hash too.
    later = record(session, event("hard", email="bob@example.org", at=T0 + timedelta(days=3)))
    assert later.subscriber_id is None
    assert session.get(Bounce, later.bounce_id).email == hashed  # type: ignore[union-attr]


def test_soft_bounces_from_three_campaigns_escalate_to_hard(session: Session) -> None:
    sub = subscriber(session)
    camps = [campaign(session, n) for n in ("a", "b", "c")]
    results = [
        record(session, event("soft", campaign_uuid=c.uuid, at=T0 + timedelta(days=i)))
        for i, c in enumerate(camps)
    ]
    assert [r.effective_type for r in results] == ["soft", "soft", "hard"]
    assert results[2].action_taken == "blocklist" and results[2].suppressed
    assert sub.status == "blocklisted"
    entry = suppression.lookup(session, sub.email)
    assert entry is not None and entry.reason == "soft_bounce"


def test_escalation_needs_consecutive_campaigns_in_the_send_ledger(session: Session) -> None:
    sub = subscriber(session)
    camps = [campaign(session, n) for n in ("a", "b", "c", "d")]
    for i, camp in enumerate(camps):
        session.add(
            CampaignSend(
                campaign_id=camp.id,
                subscriber_id=sub.id,
                status="sent",
                sent_at=T0 + timedelta(days=i),
            )
        )
    session.flush()
    # Campaign c was delivered (no bounce) between the soft bounces of b and d.
    for i in (0, 1, 3):
        result = record(
            session, event("soft", campaign_uuid=camps[i].uuid, at=T0 + timedelta(days=i, hours=1))
        )
    assert result.effective_type == "soft"
    assert sub.status == "enabled"


def test_escalation_can_be_turned_off(session: Session) -> None:
    settings.set_value(session, "bounce.soft_escalation", {"enabled": False, "count": 3})
    sub = subscriber(session)
    for i, name in enumerate("abcd"):
        camp = campaign(session, name)
        result = record(session, event("soft", campaign_uuid=camp.uuid, at=T0 + timedelta(days=i)))
    assert result.effective_type == "soft"
    assert sub.status == "enabled"


def test_reason_override_counts_mailboxfull_as_soft(session: Session) -> None:
    sub = subscriber(session)
    result = record(session, event("hard", reason="mailboxfull", status="5.2.2"))
    assert result.effective_type == "soft"
    assert result.action_taken == "none" and not result.suppressed
    assert sub.status == "enabled"
    row = session.get(Bounce, result.bounce_id)
    assert row is not None and (row.type, row.effective_type) == ("hard", "soft")


def test_reason_overrides_are_configurable(session: Session) -> None:
    settings.set_value(session, "bounce.reason_overrides", {"blocked": "hard"})
    sub = subscriber(session)
    full = record(session, event("hard", reason="mailboxfull"))
    assert full.effective_type == "hard"
    assert sub.status == "blocklisted"
    other = subscriber(session, email="eve@example.org")
    blocked = record(session, event("soft", email="eve@example.org", reason="blocked"))
    assert blocked.effective_type == "hard" and other.status == "blocklisted"


def test_the_same_event_twice_is_stored_and_counted_once(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "blocklist"})
    sub = subscriber(session)
    first = record(session, event("soft", event_id="prov-1"))
    session.commit()
    again = record(session, event("soft", event_id="prov-1", at=T0 + timedelta(days=2)))
    session.commit()
    assert again.duplicate and again.bounce_id == first.bounce_id
    assert (again.counted, again.action_taken) == (False, "none")
    assert bounce_count(session) == 1
    assert sub.status == "enabled"
    # Without a provider id the content decides.
    assert not record(session, event("soft", at=T0 + timedelta(days=3))).duplicate
    assert record(session, event("soft", at=T0 + timedelta(days=3))).duplicate


def test_unknown_addresses_are_stored_by_email_and_suppressed(session: Session) -> None:
    result = record(session, event("hard", email="Stranger@Example.net", source="mailbox"))
    session.commit()
    assert result.subscriber_id is None and result.suppressed
    assert result.action_taken == "none"
    row = session.get(Bounce, result.bounce_id)
    assert row is not None and row.email == "stranger@example.net"
    assert suppression.is_suppressed(session, "stranger@example.net")
    soft = record(session, event("soft", email="other@example.net"))
    assert soft.subscriber_id is None and not soft.suppressed


def test_an_unknown_subscriber_uuid_alone_is_stored(session: Session) -> None:
    result = record(session, Event(source="api", type="hard", subscriber_uuid="0" * 36))
    assert result.subscriber_id is None and not result.suppressed
    assert bounce_count(session) == 1


def test_blocklisted_subscribers_bounces_are_still_stored(session: Session) -> None:
    sub = subscriber(session)
    sub.status = "blocklisted"
    session.flush()
    c1, c2 = campaign(session, "a"), campaign(session, "b")
    record(session, event("hard", campaign_uuid=c1.uuid))
    record(session, event("hard", campaign_uuid=c2.uuid))
    assert bounce_count(session) == 2
    ids = set(session.scalars(select(Bounce.subscriber_id)))
    assert ids == {sub.id}


def test_subscriber_found_by_uuid_else_by_email_in_any_case(session: Session) -> None:
    sub = subscriber(session, email="Mixed.Case@Example.org")
    by_email = record(session, event("soft", email="mixed.case@EXAMPLE.org"))
    by_uuid = record(
        session, Event(source="api", type="soft", subscriber_uuid=sub.uuid, occurred_at=T0)
    )
    assert by_email.subscriber_id == by_uuid.subscriber_id == sub.id
    row = session.get(Bounce, by_uuid.bounce_id)
    assert row is not None and row.email == "mixed.case@example.org"


def test_campaign_is_linked_by_uuid(session: Session) -> None:
    subscriber(session)
    camp = campaign(session)
    result = record(session, event("soft", campaign_uuid=camp.uuid.upper()))
    row = session.get(Bounce, result.bounce_id)
    assert row is not None and row.campaign_id == camp.id


def test_disabled_processing_stores_but_does_not_act(session: Session) -> None:
    settings.set_value(session, "bounce.enabled", False)
    sub = subscriber(session)
    result = record(session, event("hard"))
    assert (result.action_taken, result.suppressed) == ("none", False)
    assert sub.status == "enabled" and bounce_count(session) == 1


@pytest.mark.parametrize(
    ("evt", "field"),
    [
        (Event(source="api", type="hard"), "email"),
        (Event(source="api", type="bogus", email="a@b.org"), "type"),  # type: ignore[arg-type]
        (Event(source="", type="hard", email="a@b.org"), "source"),
        (Event(source="api", type="hard", email="not-an-address"), "email"),
        (Event(source="api", type="hard", email="a@b.org", status="5" * 40), "status"),
    ],
)
def test_bad_events_are_refused_naming_the_field(session: Session, evt: Event, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        record(session, evt)
    assert caught.value.field == field
    assert bounce_count(session) == 0


def test_record_and_commit_commits(session_maker: sessionmaker[Session]) -> None:
    with session_maker() as db:
        record_and_commit(db, event("hard", email="x@example.org"))
    with session_maker() as db:
        assert bounce_count(db) == 1


@pytest.mark.parametrize("address", ["ana@example.org", "nobody@example.org"])
def test_concurrent_duplicates_are_recorded_once(
    session_maker: sessionmaker[Session], address: str
) -> None:
    # A subscriber's row lock serializes its bounces; a stranger's race on the unique key.
    with session_maker() as db:
        subscriber(db)
        db.commit()
    barrier = threading.Barrier(4)
    results: list[Any] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with session_maker() as db:
                barrier.wait(timeout=10)
                results.append(
                    record_and_commit(db, event("hard", email=address, event_id="same-event"))
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert len({r.bounce_id for r in results}) == 1
    with session_maker() as db:
        assert bounce_count(db) == 1
        assert db.scalar(select(func.count()).select_from(Suppression)) == 1


def test_record_many_matches_one_by_one_recording(session: Session) -> None:
    rules(session, soft={"count": 2, "action": "unsubscribe"})
    sub = subscriber(session)
    c1, c2 = campaign(session, "a"), campaign(session, "b")
    batch = [
        event("soft", campaign_uuid=c1.uuid, event_id="1"),
        Event(source="api", type="hard"),  # no recipient: refused, the rest goes on
        event("soft", campaign_uuid=c2.uuid, event_id="2"),
        event("soft", campaign_uuid=c2.uuid, event_id="2"),  # a repeat inside the batch
        event("hard", email="new@example.net", event_id="3"),
    ]
    outcomes = record_many(session, batch)
    session.commit()
    assert isinstance(outcomes[1], RecordError) and outcomes[1].field == "email"
    first, second, repeat, stranger = (o for o in outcomes if not isinstance(o, RecordError))
    assert (first.action_taken, second.action_taken) == ("none", "unsubscribe")
    assert repeat.duplicate and repeat.bounce_id == second.bounce_id
    assert stranger.suppressed and stranger.subscriber_id is None
    assert statuses(session, sub.id) == {"unsubscribed"}
    assert bounce_count(session) == 3
    # The whole batch again: every event is a repeat, nothing changes.
    again = record_many(session, batch)
    assert [o.duplicate for o in again if not isinstance(o, RecordError)] == [True] * 4
    assert bounce_count(session) == 3


def test_concurrent_overlapping_batches_store_each_event_once(
    session_maker: sessionmaker[Session],
) -> None:
    with session_maker() as db:
        for n in range(5):
            subscriber(db, email=f"s{n}@example.org", lists=1)
        db.commit()
    events = [
        event("hard" if n % 2 else "soft", email=f"s{n % 5}@example.org", event_id=f"e{n}")
        for n in range(20)
    ] + [event("hard", email=f"x{n}@example.net", event_id=f"x{n}") for n in range(5)]
    batches = [events, list(reversed(events)), events[::2] + events[1::2]]
    barrier = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def deliver(batch: list[Event]) -> None:
        try:
            with session_maker() as db:
                barrier.wait(timeout=10)
                record_many(db, batch)
                db.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with session_maker() as db:
        assert bounce_count(db) == len(events)
        # Every hard-bounced address (all five subscribers, five strangers) is suppressed once.
        assert db.scalar(select(func.count()).select_from(Suppression)) == 10


def test_internet_text_with_nul_characters_is_stored_without_them(session: Session) -> None:
    result = record(
        session,
        event("hard", diagnostic="550 bad\x00 mailbox", meta={"raw\x00": ["x\x00y", 1]}),
    )
    session.commit()
    row = session.get(Bounce, result.bounce_id)
    assert row is not None
    assert (row.diagnostic, row.meta) == ("550 bad mailbox", {"raw": ["xy", 1]})
    with pytest.raises(RecordError) as caught:
        record(session, event("hard", reason="user\x00unknown"))
    assert caught.value.field == "reason"


def test_oversized_or_unserializable_meta_is_refused(session: Session) -> None:
    with pytest.raises(RecordError) as big:
        record(session, event("hard", meta={"blob": "x" * 70_000}))
    assert big.value.field == "meta"
    with pytest.raises(RecordError) as odd:
        record(session, event("hard", meta={"when": object()}))
    assert odd.value.field == "meta"


def test_delete_after_an_earlier_suppression_leaves_only_the_hash(session: Session) -> None:
    rules(session, complaint={"count": 1, "action": "delete"})
    subscriber(session, email="carl@example.org")
    record(session, event("hard", email="carl@example.org", at=T0))
    entry = suppression.lookup(session, "carl@example.org")
    assert entry is not None and entry.email == "carl@example.org"
    record(session, event("complaint", email="carl@example.org", at=T0 + timedelta(days=1)))
    session.commit()
    session.expire_all()
    entries = session.scalars(select(Suppression)).all()
    assert [(e.email, e.reason) for e in entries] == [(None, "hard_bounce")]
    assert session.scalars(select(Bounce.email)).all() == [email_hash("carl@example.org")] * 2


def test_reapply_can_delete(session: Session) -> None:
    sub = subscriber(session, email="dora@example.org")
    sub_id = sub.id
    record(session, event("complaint", email="dora@example.org"))
    assert sub.status == "blocklisted"
    rules(session, complaint={"count": 1, "action": "delete"})
    result = reapply(session)
    session.commit()
    assert result.actions == {"delete": 1}
    assert session.get(Subscriber, sub_id) is None
    assert suppression.is_suppressed(session, "dora@example.org")
    assert session.scalars(select(Suppression.email)).all() == [None]
