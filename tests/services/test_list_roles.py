"""services.list_roles and the list-grant checks of services.roles (the M1 rule for list
roles)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from stmails.db.models import MailingList
from stmails.services import list_roles, roles, users
from stmails.services.errors import Conflict, Forbidden, InvalidInput
from stmails.services.roles import Actor


def _lists(session: Session, *names: str) -> list[int]:
    made = [MailingList(name=n) for n in names]
    session.add_all(made)
    session.flush()
    return [m.id for m in made]


def test_grants_are_checked_and_stored(session: Session) -> None:
    a, b = _lists(session, "A", "B")
    role = list_roles.create(session, " Team ", {a: ["list:manage", "list:get", "list:get"], b: []})
    assert role.name == "Team" and role.type == "list"
    assert [(g.list_id, g.permissions) for g in role.lists] == [(a, ["list:get", "list:manage"])]
    assert roles.list_grants(role) == (frozenset({a}), frozenset({a}))
    list_roles.update(session, role, name=None, grants={b: ["list:get"]})
    assert roles.list_grants(role) == (frozenset({b}), frozenset())
    with pytest.raises(InvalidInput, match="list:delete"):
        list_roles.create(session, "X", {a: ["list:delete"]})
    with pytest.raises(InvalidInput, match="no list"):
        list_roles.create(session, "X", {a + b + 100: ["list:get"]})
    with pytest.raises(Conflict):
        list_roles.create(session, "Team", {})
    # A list role never is the Super Admin role, whatever its name.
    named = list_roles.create(session, roles.SUPER_ADMIN, {a: ["list:get"]})
    assert not roles.is_super_admin(named)
    assert roles.effective_permissions(named) == frozenset()


def test_a_caller_passes_on_only_its_own_list_grants(session: Session) -> None:
    a, b = _lists(session, "A", "B")
    reader = Actor(frozenset({"roles:manage"}), list_get=frozenset({a}))
    list_roles.create(session, "Ok", {a: ["list:get"]}, actor=reader)
    for grants in ({a: ["list:manage"]}, {b: ["list:get"]}):
        with pytest.raises(Forbidden, match="cannot grant list:"):
            list_roles.create(session, "No", grants, actor=reader)
    everything = Actor(frozenset({"lists:get_all", "lists:manage_all"}))
    wide = list_roles.create(session, "Wide", {b: ["list:get", "list:manage"]}, actor=everything)
    with pytest.raises(Forbidden):
        list_roles.update(session, wide, name="Narrow", grants=None, actor=reader)
    with pytest.raises(Forbidden):
        roles.delete(session, wide, actor=reader)
    with pytest.raises(Forbidden):
        roles.check_can_grant(reader, wide)
    roles.check_can_grant(everything, wide)


def test_a_list_role_in_use_stays_and_a_user_with_one_is_managed_by_its_peers(
    session: Session,
) -> None:
    (a,) = _lists(session, "A")
    team = list_roles.create(session, "Team", {a: ["list:get", "list:manage"]})
    plain = roles.create(session, "Plain", ["bounces:get"])
    user, _ = users.create_api_user(session, "u", role=plain, list_role=team)
    assert users.get(session, user.id).list_role is team
    with pytest.raises(Conflict):
        roles.delete(session, team)
    outsider = Actor(frozenset({"users:manage", "bounces:get"}))
    with pytest.raises(Forbidden, match="list role"):
        users.update_user(session, user, status="disabled", actor=outsider)
    peer = Actor(
        frozenset({"users:manage", "bounces:get"}),
        list_get=frozenset({a}),
        list_manage=frozenset({a}),
    )
    users.update_user(session, user, list_role=None, set_list_role=True, actor=peer)
    assert user.list_role is None
    roles.delete(session, team)
