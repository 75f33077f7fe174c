"""services.bounces: reapply() over history, and the listing/deletion helpers of the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.core.event import Event
from stmails.db.models import Bounce, Campaign, MailingList, Subscriber, SubscriberList
from stmails.services import bounces, settings, suppression
from stmails.services.bounces import BounceFilter
from stmails.services.errors import InvalidInput

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def add_subscriber(session: Session, email: str) -> Subscriber:
    sub = Subscriber(email=email)
    mlist = MailingList(name=f"l-{email}")
    session.add_all([sub, mlist])
    session.flush()
    session.add(SubscriberList(subscriber_id=sub.id, list_id=mlist.id, status="confirmed"))
    session.flush()
    return sub


def soft(email: str, campaign_uuid: str = "", at: datetime = T0, **kw: str) -> Event:
    return Event(
        source=kw.pop("source", "api"),
        type="soft",
        email=email,
        campaign_uuid=campaign_uuid,
        occurred_at=at,
        **kw,
    )


def test_reapply_applies_a_stricter_rule_to_history(session: Session) -> None:
    sub = add_subscriber(session, "a@example.org")
    other = add_subscriber(session, "b@example.org")
    for day in range(2):
        bounces.record(session, soft("a@example.org", at=T0 + timedelta(days=day)))
    bounces.record(session, soft("b@example.org"))
    assert sub.status == "enabled"
    settings.set_value(session, "bounce.actions", {"soft": {"count": 2, "action": "blocklist"}})
    result = bounces.reapply(session)
    session.commit()
    assert (result.bounces, result.subjects) == (3, 2)
    assert result.actions == {"blocklist": 1}
    session.refresh(sub)
    session.refresh(other)
    assert (sub.status, other.status) == ("blocklisted", "enabled")


def test_reapply_retypes_bounces_after_an_override_changes(session: Session) -> None:
    sub = add_subscriber(session, "a@example.org")
    result = bounces.record(
        session,
        Event(source="api", type="hard", email=sub.email, reason="mailboxfull", occurred_at=T0),
    )
    assert result.effective_type == "soft" and sub.status == "enabled"
    settings.set_value(session, "bounce.reason_overrides", {})
    replay = bounces.reapply(session)
    assert replay.retyped == 1
    assert session.scalars(select(Bounce.effective_type)).one() == "hard"
    assert sub.status == "blocklisted"
    assert suppression.is_suppressed(session, "a@example.org")


def test_reapply_escalates_strangers_and_never_undoes(session: Session) -> None:
    camps = [Campaign(name=n, subject=n) for n in "abc"]
    session.add_all(camps)
    session.flush()
    settings.set_value(session, "bounce.soft_escalation", {"enabled": False, "count": 3})
    for i, camp in enumerate(camps):
        bounces.record(session, soft("stranger@example.net", camp.uuid, at=T0 + timedelta(days=i)))
    assert not suppression.is_suppressed(session, "stranger@example.net")
    settings.set_value(session, "bounce.soft_escalation", {"enabled": True, "count": 3})
    assert bounces.reapply(session).suppressed == 1
    entry = suppression.lookup(session, "stranger@example.net")
    assert entry is not None and entry.reason == "soft_bounce"
    # Relaxing the rules again does not lift the suppression.
    settings.set_value(session, "bounce.soft_escalation", {"enabled": False, "count": 3})
    bounces.reapply(session)
    assert suppression.is_suppressed(session, "stranger@example.net")


def test_reapply_with_unchanged_rules_changes_nothing(session: Session) -> None:
    add_subscriber(session, "a@example.org")
    bounces.record(session, soft("a@example.org"))
    result = bounces.reapply(session)
    assert (result.retyped, result.actions, result.suppressed) == (0, {}, 0)


@pytest.fixture
def history(session: Session) -> dict[str, int]:
    sub = add_subscriber(session, "a@example.org")
    camp = Campaign(name="Spring", subject="s")
    session.add(camp)
    session.flush()
    rows = [
        soft("a@example.org", camp.uuid, at=T0, reason="mailboxfull", source="ses"),
        soft("a@example.org", at=T0 + timedelta(days=1), source="mailbox"),
        Event(source="api", type="hard", email="x@example.net", occurred_at=T0 + timedelta(days=2)),
        Event(
            source="api",
            type="complaint",
            email="y@example.net",
            occurred_at=T0 + timedelta(days=3),
        ),
    ]
    ids = [bounces.record(session, e).bounce_id for e in rows]
    session.commit()
    return {"sub": sub.id, "campaign": camp.id, "first": ids[0], "last": ids[-1]}


def test_listing_filters(session: Session, history: dict[str, int]) -> None:
    def ids(**kw: object) -> int:
        return bounces.list_bounces(session, BounceFilter(**kw)).total  # type: ignore[arg-type]

    assert ids() == 4
    assert ids(campaign_id=history["campaign"]) == 1
    assert ids(subscriber_id=history["sub"]) == 2
    assert ids(type="soft") == 2
    assert ids(reason="mailboxfull") == 1
    assert ids(source="mailbox") == 1
    assert ids(email="X@example.NET") == 1
    assert ids(since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)) == 2
    # The recipient's domain (filled in by the database), any case.
    assert ids(domain="Example.NET") == 2
    assert ids(domain="example.org") == 2
    assert ids(domain="example.com") == 0


def test_every_ordering_pages_through_each_bounce_once(
    session: Session, history: dict[str, int]
) -> None:
    """Pages are read id-first (from the bounces' own indexes) except by campaign name: either
    way, the pages together are the whole ordered listing."""
    for order_by in ("created_at", "email", "campaign_name", "source", "type", "reason", "id"):
        for order in ("asc", "desc"):
            whole = bounces.list_bounces(session, order_by=order_by, order=order, per_page=None)
            paged = [
                row.id
                for number in (1, 2, 3)
                for row in bounces.list_bounces(
                    session, order_by=order_by, order=order, page=number, per_page=2
                ).results
            ]
            assert paged == [row.id for row in whole.results], (order_by, order)
    beyond = bounces.list_bounces(session, page=9, per_page=2)
    assert (beyond.results, beyond.total) == ([], 4)


def test_listing_rows_carry_listmonks_fields(session: Session, history: dict[str, int]) -> None:
    row = bounces.get_bounce(session, history["first"])
    assert row is not None
    assert (row.email, row.subscriber_id, row.campaign_name) == (
        "a@example.org",
        history["sub"],
        "Spring",
    )
    assert row.subscriber_uuid is not None and row.created_at == T0
    assert bounces.get_bounce(session, 999_999) is None


def test_listing_orders_and_pages(session: Session, history: dict[str, int]) -> None:
    page = bounces.list_bounces(session, page=1, per_page=3)
    assert (page.total, len(page.results)) == (4, 3)
    assert page.results[0].id == history["last"]
    second = bounces.list_bounces(session, page=2, per_page=3)
    assert len(second.results) == 1 and second.results[0].id == history["first"]
    by_email = bounces.list_bounces(session, order_by="email", order="asc", per_page=None)
    assert [r.email for r in by_email.results][-1] == "y@example.net"
    with pytest.raises(InvalidInput) as caught:
        bounces.list_bounces(session, order_by="email; drop table bounces")
    assert caught.value.field == "order_by"


def test_deleting_bounces_by_ids_by_subscriber_and_all(
    session: Session, history: dict[str, int]
) -> None:
    assert bounces.delete_bounces(session, BounceFilter(ids=[history["first"]])) == 1
    assert bounces.delete_bounces(session, BounceFilter(subscriber_id=history["sub"])) == 1
    assert bounces.delete_bounces(session, BounceFilter()) == 2
    assert session.scalar(select(func.count()).select_from(Bounce)) == 0
    # Only the history goes: the suppressions made from it stay.
    assert suppression.is_suppressed(session, "x@example.net")


def test_blocklist_bounced_blocklists_every_bounced_subscriber(
    session: Session, history: dict[str, int]
) -> None:
    quiet = add_subscriber(session, "quiet@example.org")
    assert bounces.blocklist_bounced(session) == 1
    session.expire_all()
    assert session.get(Subscriber, history["sub"]).status == "blocklisted"  # type: ignore[union-attr]
    assert session.get(Subscriber, quiet.id).status == "enabled"  # type: ignore[union-attr]


def test_a_strangers_count_leaves_out_a_subscribers_bounces_of_the_same_address(
    session: Session,
) -> None:
    settings.set_value(session, "bounce.actions", {"hard": {"count": 2, "action": "blocklist"}})

    def hard(at: datetime) -> Event:
        return Event(source="api", type="hard", email="old@example.org", occurred_at=at)

    sub = add_subscriber(session, "old@example.org")
    bounces.record(session, hard(T0))
    sub.email = "new@example.org"
    session.flush()
    # The address now belongs to nobody: its first bounce as a stranger counts alone.
    first = bounces.record(session, hard(T0 + timedelta(days=1)))
    assert first.subscriber_id is None and not first.suppressed
    assert not suppression.is_suppressed(session, "old@example.org")
    second = bounces.record(session, hard(T0 + timedelta(days=2)))
    assert second.suppressed and suppression.is_suppressed(session, "old@example.org")
