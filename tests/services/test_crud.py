"""services.subscribers, lists and campaigns: the CRUD the API builds on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import Bounce, Subscriber
from stmails.services import campaign_records as campaigns
from stmails.services import lists, subscribers
from stmails.services.errors import Conflict, InvalidInput, NotFound


def test_subscriber_create_validates_and_refuses_duplicates(session: Session) -> None:
    single = lists.create(session, name="News", optin="single")
    double = lists.create(session, name="Digest", optin="double")
    sub = subscribers.create(
        session,
        email="Ana@Example.ORG",
        name="Ana",
        attribs={"city": "Oslo"},
        list_ids=[single.id, double.id],
    )
    assert sub.email == "Ana@example.org"
    subs = subscribers.subscriptions(session, [sub.id])[sub.id]
    assert {(s.list.name, s.status) for s in subs} == {
        ("News", "confirmed"),
        ("Digest", "unconfirmed"),
    }
    with pytest.raises(Conflict):
        subscribers.create(session, email="ana@example.org")
    with pytest.raises(InvalidInput) as caught:
        subscribers.create(session, email="not an address")
    assert caught.value.field == "email"
    with pytest.raises(NotFound):
        subscribers.create(session, email="b@example.org", list_ids=[9999])


def test_subscriber_update_replaces_lists_and_blocklisting_unsubscribes(session: Session) -> None:
    a, b = lists.create(session, name="A"), lists.create(session, name="B")
    sub = subscribers.create(session, email="x@example.org", list_ids=[a.id])
    subscribers.update_subscriber(session, sub, name="X", list_ids=[b.id])
    assert [s.list.id for s in subscribers.subscriptions(session, [sub.id])[sub.id]] == [b.id]
    subscribers.update_subscriber(session, sub, status="blocklisted")
    assert {s.status for s in subscribers.subscriptions(session, [sub.id])[sub.id]} == {
        "unsubscribed"
    }
    other = subscribers.create(session, email="y@example.org")
    with pytest.raises(Conflict):
        subscribers.update_subscriber(session, other, email="X@example.org")


def test_manage_lists_add_unsubscribe_remove(session: Session) -> None:
    mlist = lists.create(session, name="L")
    ids = [subscribers.create(session, email=f"u{i}@example.org").id for i in range(3)]
    subscribers.manage_lists(session, ids, [mlist.id], "add", status="confirmed")
    assert lists.counts(session, [mlist.id])[mlist.id].by_status == {"confirmed": 3}
    subscribers.manage_lists(session, ids[:1], [mlist.id], "unsubscribe")
    subscribers.manage_lists(session, ids[1:2], [mlist.id], "remove")
    counted = lists.counts(session, [mlist.id])[mlist.id]
    assert (counted.total, counted.by_status) == (2, {"confirmed": 1, "unsubscribed": 1})


def test_subscriber_listing_filters_search_and_conditions(session: Session) -> None:
    mlist = lists.create(session, name="L")
    subscribers.create(
        session, email="oslo@example.org", attribs={"city": "Oslo"}, list_ids=[mlist.id]
    )
    subscribers.create(session, email="bergen@example.org", name="50%_off")
    subscribers.create(session, email="third@example.org", status="disabled")
    assert subscribers.list_subscribers(session).total == 3
    assert subscribers.list_subscribers(session, list_ids=[mlist.id]).total == 1
    assert subscribers.list_subscribers(session, search="BERG").total == 1
    # LIKE wildcards in the search text are taken literally.
    assert subscribers.list_subscribers(session, search="%_").total == 1
    disabled = subscribers.list_subscribers(session, condition=Subscriber.status == "disabled")
    assert [s.email for s in disabled.results] == ["third@example.org"]
    page = subscribers.list_subscribers(session, order_by="email", order="desc", per_page=2)
    assert [s.email for s in page.results] == ["third@example.org", "oslo@example.org"]
    assert page.total == 3


def test_deleting_a_subscriber_keeps_its_bounces(session: Session) -> None:
    sub = subscribers.create(session, email="d@example.org")
    session.add(
        Bounce(
            subscriber_id=sub.id,
            email=sub.email,
            type="soft",
            effective_type="soft",
            source="api",
            dedup_key="k",
            count_key="day:2026-01-01",
        )
    )
    session.flush()
    assert subscribers.delete_subscribers(session, [sub.id]) == 1
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Bounce)) == 1


def test_lists_crud_and_tag_filter(session: Session) -> None:
    a = lists.create(session, name="Alpha", type="public", tags=["news", "weekly"])
    lists.create(session, name="Beta", tags=["promo"])
    assert [m.name for m in lists.list_lists(session, tags=["NEWS"]).results] == ["Alpha"]
    assert lists.list_lists(session, search="bet").total == 1
    lists.update_list(session, a, name="Alpha 2", optin="double")
    assert lists.get(session, a.id).optin == "double"
    with pytest.raises(InvalidInput):
        lists.update_list(session, a, type="secret")
    assert lists.delete_lists(session, [a.id]) == 1
    with pytest.raises(NotFound):
        lists.get(session, a.id)


def test_campaign_lifecycle(session: Session) -> None:
    mlist = lists.create(session, name="L")
    camp = campaigns.create(
        session, name="C", subject="Hello", list_ids=[mlist.id], body="<p>hi</p>", tags=["t"]
    )
    assert camp.status == "draft"
    assert [cl.list_name for cl in campaigns.campaign_lists(session, [camp.id])[camp.id]] == ["L"]
    with pytest.raises(InvalidInput) as caught:
        campaigns.set_status(session, camp, "scheduled")
    assert caught.value.field == "send_at"
    campaigns.update_campaign(session, camp, send_at=datetime(2026, 9, 1, tzinfo=UTC))
    campaigns.set_status(session, camp, "scheduled")
    campaigns.set_status(session, camp, "running")
    assert camp.started_at is not None
    with pytest.raises(InvalidInput):
        campaigns.update_campaign(session, camp, subject="changed while running")
    with pytest.raises(InvalidInput):
        campaigns.set_status(session, camp, "draft")
    campaigns.set_status(session, camp, "finished")
    assert campaigns.get_by_uuid(session, camp.uuid.upper()) is camp
    assert campaigns.list_campaigns(session, tags=["t"], statuses=["finished"]).total == 1
    with pytest.raises(InvalidInput) as unknown:
        campaigns.create(session, name="D", subject="s", list_ids=[mlist.id], evil="x")
    assert unknown.value.field == "evil"
    with pytest.raises(InvalidInput):
        campaigns.create(session, name="D", subject="s", list_ids=[])


def test_the_old_campaigns_module_is_an_alias_of_campaign_records() -> None:
    from stmails.services import campaigns as old

    public = [name for name in vars(campaigns) if not name.startswith("_")]
    assert {"create", "set_status", "update_campaign", "delete_campaigns"} <= set(public)
    for name in public:
        assert getattr(old, name) is getattr(campaigns, name), name
