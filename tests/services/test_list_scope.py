"""services.list_scope: which named subscribers and campaigns lie outside a caller's lists."""

from __future__ import annotations

from sqlalchemy.orm import Session

from stmails.services import campaign_records, list_scope
from stmails.services import lists as list_service
from stmails.services import subscribers as subscriber_service


def test_subscriber_off_lists_names_one_outside(session: Session) -> None:
    mine = list_service.create(session, name="Mine").id
    other = list_service.create(session, name="Other").id
    inside, outside, nowhere = (
        subscriber_service.create(session, email=f"{n}@example.com").id for n in "abc"
    )
    # Any subscription status counts as being on the list.
    subscriber_service.subscribe(session, [inside], [mine], status="unsubscribed")
    subscriber_service.subscribe(session, [outside], [other], status="confirmed")
    session.flush()
    assert list_scope.subscriber_off_lists(session, [inside], {mine}) is None
    assert list_scope.subscriber_off_lists(session, [inside, outside], {mine}) == outside
    assert list_scope.subscriber_off_lists(session, [nowhere], frozenset({mine})) == nowhere
    assert list_scope.subscriber_off_lists(session, [outside], [mine, other]) is None
    # Unknown ids are left to the route (404).
    assert list_scope.subscriber_off_lists(session, [999_999], {mine}) is None
    # No list at all: every known subscriber is outside.
    assert list_scope.subscriber_off_lists(session, [inside], set()) == inside


def test_campaign_off_lists(session: Session) -> None:
    mine = list_service.create(session, name="Mine").id
    other = list_service.create(session, name="Other").id
    both = campaign_records.create(session, name="B", subject="s", list_ids=[mine, other]).id
    theirs = campaign_records.create(session, name="T", subject="s", list_ids=[other]).id
    session.flush()
    assert not list_scope.campaign_off_lists(session, both, {mine})
    assert list_scope.campaign_off_lists(session, theirs, frozenset({mine}))
    assert not list_scope.campaign_off_lists(session, theirs, [other])
    assert list_scope.campaign_off_lists(session, both, set())
    assert not list_scope.campaign_off_lists(session, 999_999, {mine})
