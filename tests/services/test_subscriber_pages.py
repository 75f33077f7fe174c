"""services.subscriber_pages: keyset screens newest first, the cheap total, and the search
condition matching exactly what the API's `matching` matches on this database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Subscriber
from stmails.services import lists as list_service
from stmails.services import subscriber_pages
from stmails.services import subscribers as subscriber_service


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
