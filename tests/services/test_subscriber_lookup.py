"""services.subscribers' one lookup by address: any case, surrounding space ignored, the same
answer from every caller that finds subscribers by address."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.core.event import Event
from stmails.db.models import Subscriber
from stmails.services import subscribers
from stmails.services.bounces import record
from stmails.services.sending.campaigns import subscribers_by_email
from stmails.services.sending.direct import resolve_subscribers, tx_targets

SPELLINGS = ["Ana@example.org", "ana@EXAMPLE.ORG", "  ANA@Example.Org\t", "\nana@example.org "]


def test_email_key_is_the_one_normalization() -> None:
    assert {subscribers.email_key(s) for s in SPELLINGS} == {"ana@example.org"}
    assert subscribers.email_key("   ") == ""


def test_every_spelling_finds_the_same_subscriber(session: Session) -> None:
    ana = subscribers.create(session, email="Ana@example.org", name="Ana")
    other = subscribers.create(session, email="bo@example.org", name="Bo")
    session.flush()
    for spelling in SPELLINGS:
        assert subscribers.get_by_email(session, spelling) is ana
        assert subscribers.get_many_by_email(session, [spelling]) == {"ana@example.org": ana}
        assert subscribers_by_email(session, [spelling]) == {"ana@example.org": ana}
        ids = session.scalars(select(Subscriber.id).where(subscribers.email_in([spelling])))
        assert list(ids) == [ana.id]
    both = subscribers.get_many_by_email(session, [*SPELLINGS, " BO@example.org", "x@y.z"])
    assert both == {"ana@example.org": ana, "bo@example.org": other}


def test_no_address_finds_nobody(session: Session) -> None:
    subscribers.create(session, email="ana@example.org")
    session.flush()
    assert subscribers.get_by_email(session, "  ") is None
    assert subscribers.get_by_email(session, "anna@example.org") is None
    assert subscribers.get_many_by_email(session, []) == {}
    assert subscribers.get_many_by_email(session, ["", " "]) == {}


def test_direct_sending_resolves_any_spelling(session: Session) -> None:
    ana = subscribers.create(session, email="Ana@example.org", name="Ana")
    session.flush()
    targets = resolve_subscribers(session, emails=[" ANA@EXAMPLE.ORG ", "nobody@example.org"])
    assert [(t.label, t.refusal) for t in targets] == [
        ("Ana@example.org", ""),
        ("nobody@example.org", "subscriber not found"),
    ]
    fallback = tx_targets(session, "fallback", emails=["ana@EXAMPLE.org "])
    assert fallback[0].recipient is not None
    assert fallback[0].recipient.id == ana.id


def test_a_bounce_for_any_spelling_is_the_subscribers(session: Session) -> None:
    ana = subscribers.create(session, email="Ana@example.org", name="Ana")
    session.flush()
    for n, spelling in enumerate(SPELLINGS):
        found = record(
            session,
            Event(
                source="api",
                type="soft",
                email=spelling,
                event_id=f"spelling-{n}",
                occurred_at=datetime(2026, 3, 2, 9, n, tzinfo=UTC),
            ),
        )
        assert found.subscriber_id == ana.id, spelling
