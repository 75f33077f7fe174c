"""The lists service's small look-ups by id: names for pickers and grants, and which ids exist."""

from __future__ import annotations

from sqlalchemy.orm import Session

from stmails.services import lists


def test_first_names_are_in_id_order_bounded_and_include_archived(session: Session) -> None:
    made = [
        lists.create(session, name="Zulu"),
        lists.create(session, name="Alpha", status="archived"),
        lists.create(session, name="Mike", type="public"),
    ]
    session.flush()
    expected = [(m.id, m.name) for m in sorted(made, key=lambda m: m.id)]
    assert lists.first_names(session, limit=10) == expected
    assert lists.first_names(session, limit=2) == expected[:2]


def test_names_of_leaves_out_unknown_ids(session: Session) -> None:
    a = lists.create(session, name="Alpha")
    b = lists.create(session, name="Beta", status="archived")
    session.flush()
    unknown = max(a.id, b.id) + 100
    assert lists.names_of(session, {a.id, b.id, unknown}) == {a.id: "Alpha", b.id: "Beta"}
    assert lists.names_of(session, [unknown]) == {}
    assert lists.names_of(session, set()) == {}


def test_existing_ids_tells_lists_from_unknown_ids(session: Session) -> None:
    a = lists.create(session, name="Alpha", type="private")
    session.flush()
    unknown = a.id + 100
    assert lists.existing_ids(session, {a.id, unknown}) == {a.id}
    assert lists.existing_ids(session, [unknown]) == set()
    assert lists.existing_ids(session, ()) == set()
