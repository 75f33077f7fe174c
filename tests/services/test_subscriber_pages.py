"""services.subscriber_pages: keyset screens newest first, the cheap total, and the search
condition matching exactly what the API's `matching` matches on this database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Subscriber
from stmails.services import lists as list_service
from stmails.services import subscriber_pages
from stmails.services import subscribers as subscriber_service
from stmails.services.subscriber_query import QueryError


def _people(session: Session, names: list[str]) -> list[int]:
    ids = [
        subscriber_service.create(session, email=f"p{i}@example.com", name=name).id
        for i, name in enumerate(names)
    ]
    session.flush()
    return ids


def test_screens_walk_the_key_newest_first(session: Session) -> None:
    ids = _people(session, [f"n{i}" for i in range(7)])
    first = subscriber_pages.screen(session, [], size=3)
    assert [s.id for s in first.rows] == ids[::-1][:3]
    assert first.total == 7 and first.next_before == ids[4]
    second = subscriber_pages.screen(session, [], before=first.next_before, size=3)
    assert [s.id for s in second.rows] == [ids[3], ids[2], ids[1]]
    last = subscriber_pages.screen(session, [], before=second.next_before, size=3)
    assert [s.id for s in last.rows] == [ids[0]] and last.next_before is None
    # With a filter the total is not counted.
    mlist = list_service.create(session, name="L")
    subscriber_service.subscribe(session, ids[:2], [mlist.id], status="confirmed")
    terms = subscriber_pages.filters(list_ids=[mlist.id], subscription_status="confirmed")
    on_list = subscriber_pages.screen(session, terms, size=3)
    assert [s.id for s in on_list.rows] == [ids[1], ids[0]] and on_list.total is None
    assert subscriber_pages.matching_ids(session, terms) == ids[:2]


def test_search_matches_what_the_api_matches(session: Session) -> None:
    names = ["Anna Maier", "ANNA", "Zoë Ånström", "zoë", "50% off", "a_b", "a\\b", "plain"]
    _people(session, names)
    dialect = session.get_bind().dialect.name
    for needle in ("anna", "AnNa", "ZOË", "zoë", "ström", "%", "_", "\\", "p3@EXAMPLE", "x"):
        api = set(session.scalars(select(Subscriber.id).where(subscriber_service.matching(needle))))
        ours = set(
            session.scalars(
                select(Subscriber.id).where(subscriber_pages.search_term(needle, dialect))
            )
        )
        assert ours == api, needle
    found = subscriber_pages.filters(search="50%", dialect=dialect)
    assert [s.name for s in subscriber_pages.screen(session, found).rows] == ["50% off"]


def _three_on_two_lists(session: Session) -> tuple[list[int], int, int]:
    ids = _people(session, ["Anna", "Bert", "Cleo", "Dora"])
    first = list_service.create(session, name="First").id
    second = list_service.create(session, name="Second").id
    subscriber_service.subscribe(session, ids[:2], [first], status="confirmed")
    subscriber_service.subscribe(session, [ids[2]], [second], status="unsubscribed")
    session.flush()
    return ids, first, second


def test_selection_screens_ids_and_export_chunks(session: Session) -> None:
    ids, first, _ = _three_on_two_lists(session)
    everyone = subscriber_pages.Selection()
    assert [s.id for s in subscriber_pages.screen_of(session, everyone, size=2).rows] == [
        ids[3],
        ids[2],
    ]
    assert subscriber_pages.ids_of(session, everyone) == ids
    on_first = subscriber_pages.Selection(list_ids=(first,), subscription_status="confirmed")
    assert subscriber_pages.ids_of(session, on_first) == ids[:2]
    assert subscriber_pages.ids_of(session, subscriber_pages.Selection(search="  cle ")) == [ids[2]]
    queried = subscriber_pages.Selection(query=" subscribers.name = 'Dora' ")
    assert subscriber_pages.ids_of(session, queried) == [ids[3]]
    # Export chunks walk the key upwards.
    assert [s.id for s in subscriber_pages.rows_after(session, everyone, 0, 3)] == ids[:3]
    assert [s.id for s in subscriber_pages.rows_after(session, everyone, ids[2], 3)] == [ids[3]]
    assert [s.id for s in subscriber_pages.rows_after(session, on_first, ids[0], 5)] == [ids[1]]
    # A blank query is no query; one that does not parse is a QueryError before any read.
    subscriber_pages.check_selection(session, subscriber_pages.Selection(query="   "))
    with pytest.raises(QueryError):
        subscriber_pages.check_selection(session, subscriber_pages.Selection(query="email = "))


def test_api_page_keeps_a_scoped_caller_to_its_lists(session: Session) -> None:
    ids, first, second = _three_on_two_lists(session)
    assert subscriber_pages.api_page(session).total == 4
    mine = subscriber_pages.api_page(session, within=frozenset({first}))
    assert [s.id for s in mine.results] == ids[:2] and mine.total == 2
    narrowed = subscriber_pages.api_page(
        session, within={first, second}, query="subscribers.name != 'Anna'", order="desc"
    )
    assert [s.id for s in narrowed.results] == [ids[2], ids[1]]
    # With list_ids (checked against the caller's lists by the route) `within` adds nothing.
    named = subscriber_pages.api_page(
        session, within={first}, list_ids=[second], subscription_status="unsubscribed"
    )
    assert [s.id for s in named.results] == [ids[2]]
    assert [s.id for s in subscriber_pages.api_page(session, search="DORA").results] == [ids[3]]
    with pytest.raises(QueryError):
        subscriber_pages.api_page(session, query="nope(")


def test_bulk_ids_select_as_the_query_actions_do(session: Session) -> None:
    ids, first, second = _three_on_two_lists(session)
    assert sorted(subscriber_pages.bulk_ids(session)) == ids
    assert sorted(subscriber_pages.bulk_ids(session, within={first})) == ids[:2]
    assert subscriber_pages.bulk_ids(session, search="bert", within={first, second}) == [ids[1]]
    on_second = subscriber_pages.bulk_ids(
        session, list_ids=[second], subscription_status="unsubscribed", within={first}
    )
    assert on_second == [ids[2]]
    assert (
        subscriber_pages.bulk_ids(session, list_ids=[second], subscription_status="confirmed") == []
    )
    assert subscriber_pages.bulk_ids(session, query="subscribers.name = 'Cleo'") == [ids[2]]
    assert subscriber_pages.bulk_ids(session, within=set()) == []


def test_existing_ids_and_emails_of(session: Session) -> None:
    ids = _people(session, ["A", "B"])
    assert subscriber_service.existing_ids(session, [ids[1], 999_999, ids[0]]) == ids
    assert sorted(subscriber_service.emails_of(session, ids)) == [
        "p0@example.com",
        "p1@example.com",
    ]
    assert subscriber_service.existing_ids(session, []) == []


def test_lists_by_name(session: Session) -> None:
    b = list_service.create(session, name="B").id
    a = list_service.create(session, name="A").id
    b2 = list_service.create(session, name="B2").id
    assert [m.id for m in list_service.by_name(session)] == [a, b, b2]
