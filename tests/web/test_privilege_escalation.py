"""Issue 11, M1: `users:manage` or `roles:manage` alone must not make its holder Super Admin,
reset a Super Admin's password or widen its own role. A caller grants only what it holds; only
a Super Admin grants Super Admin or sets another user's password."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from stmails.db.models import Role, User
from stmails.services import roles, users
from stmails.services.errors import Forbidden
from stmails.services.roles import ALL_PERMISSIONS, Actor

from .conftest import ADMIN

Credentials = tuple[str, str]


def _admin_user(
    session_maker: sessionmaker[Session], name: str, *permissions: str
) -> tuple[Credentials, int, int]:
    """A password user with a new role granting `permissions`: (credentials, user id, role id)."""
    password = f"{name}-password"
    with session_maker() as session:
        role = roles.create(session, f"role of {name}", permissions)
        user = users.create_admin(session, name, password, role=role)
        session.commit()
        return (name, password), user.id, role.id


def _ids(session_maker: sessionmaker[Session]) -> tuple[int, int]:
    """(the Super Admin role's id, the first admin's user id)."""
    with session_maker() as session:
        super_admin = roles.super_admin_role(session)
        admin = users.get_by_username(session, ADMIN[0])
        session.commit()
        assert admin is not None
        return super_admin.id, admin.id


def _denied(response: object) -> None:
    assert getattr(response, "status_code") == 403, getattr(response, "text")  # noqa: B009
    assert getattr(response, "json")()["message"].startswith("permission denied")  # noqa: B009


@pytest.fixture
def user_manager(session_maker: sessionmaker[Session]) -> tuple[Credentials, int, int]:
    return _admin_user(session_maker, "usermanager", "users:get", "users:manage", "lists:get_all")


def test_users_manage_cannot_create_super_admins_or_grant_what_it_lacks(
    client: TestClient, session_maker: sessionmaker[Session], user_manager: tuple
) -> None:
    caller, _, own_role = user_manager
    super_admin_role, _ = _ids(session_maker)
    for path, body in (
        ("/api/users", {"username": "evil", "password": "evil-password", "type": "user"}),
        ("/api/users", {"username": "evil", "type": "api"}),
        ("/api/users/api", {"username": "evil"}),
    ):
        _denied(client.post(path, json={**body, "user_role_id": super_admin_role}, auth=caller))
    _, _, wider_role = _admin_user(session_maker, "holder", "users:manage", "settings:manage")
    refused = client.post(
        "/api/users/api", json={"username": "evil", "user_role_id": wider_role}, auth=caller
    )
    _denied(refused)
    assert "settings:manage" in refused.json()["message"]
    assert client.get("/api/users", auth=ADMIN).json()["data"][-1]["username"] != "evil"
    # What it holds, it may grant.
    made = client.post(
        "/api/users/api", json={"username": "helper", "user_role_id": own_role}, auth=caller
    )
    assert made.status_code == 200, made.text


def test_users_manage_cannot_promote_itself(
    client: TestClient, session_maker: sessionmaker[Session], user_manager: tuple
) -> None:
    caller, own_id, _ = user_manager
    super_admin_role, _ = _ids(session_maker)
    _denied(
        client.put(
            f"/api/users/{own_id}/role", json={"user_role_id": super_admin_role}, auth=caller
        )
    )
    _denied(
        client.put(f"/api/users/{own_id}", json={"user_role_id": super_admin_role}, auth=caller)
    )
    me = client.get(f"/api/users/{own_id}", auth=caller).json()["data"]
    assert me["user_role"]["name"] == "role of usermanager"


def test_users_manage_cannot_take_over_or_remove_a_super_admin(
    client: TestClient, session_maker: sessionmaker[Session], user_manager: tuple
) -> None:
    caller, _, _ = user_manager
    _, admin_id = _ids(session_maker)
    _denied(client.put(f"/api/users/{admin_id}", json={"password": "taken-over-1"}, auth=caller))
    _denied(client.put(f"/api/users/{admin_id}", json={"status": "disabled"}, auth=caller))
    _denied(client.delete(f"/api/users/{admin_id}", auth=caller))
    # The admin's password is still its own.
    assert client.get("/api/users", auth=ADMIN).status_code == 200
    assert client.get("/api/users", auth=(ADMIN[0], "taken-over-1")).status_code == 403


def test_only_a_super_admin_sets_another_users_password(
    client: TestClient, session_maker: sessionmaker[Session], user_manager: tuple
) -> None:
    caller, own_id, _ = user_manager
    other, other_id, _ = _admin_user(session_maker, "reader", "lists:get_all")
    _denied(client.put(f"/api/users/{other_id}", json={"password": "new-password-1"}, auth=caller))
    assert client.get("/api/lists", auth=other).status_code == 200
    # Its own password, and other fields of users it outranks, it may change.
    mine = client.put(f"/api/users/{own_id}", json={"password": "my-new-password"}, auth=caller)
    assert mine.status_code == 200, mine.text
    caller = (caller[0], "my-new-password")
    renamed = client.put(f"/api/users/{other_id}", json={"username": "reader2"}, auth=caller)
    assert renamed.status_code == 200, renamed.text
    # A Super Admin sets anyone's password.
    reset = client.put(f"/api/users/{other_id}", json={"password": "reset-by-admin"}, auth=ADMIN)
    assert reset.status_code == 200, reset.text
    assert client.get("/api/lists", auth=("reader2", "reset-by-admin")).status_code == 200


def test_users_manage_cannot_manage_a_user_whose_role_outranks_it(
    client: TestClient, session_maker: sessionmaker[Session], user_manager: tuple
) -> None:
    caller, _, own_role = user_manager
    _, boss_id, _ = _admin_user(session_maker, "boss", "users:manage", "settings:manage")
    _denied(client.put(f"/api/users/{boss_id}", json={"user_role_id": own_role}, auth=caller))
    _denied(client.delete(f"/api/users/{boss_id}", auth=caller))


@pytest.fixture
def role_manager(session_maker: sessionmaker[Session]) -> tuple[Credentials, int, int]:
    return _admin_user(session_maker, "rolemanager", "roles:get", "roles:manage")


def test_roles_manage_cannot_widen_its_own_role(
    client: TestClient, session_maker: sessionmaker[Session], role_manager: tuple
) -> None:
    caller, _, own_role = role_manager
    wider = {"permissions": ["roles:get", "roles:manage", "users:manage"]}
    refused = client.put(f"/api/roles/users/{own_role}", json=wider, auth=caller)
    _denied(refused)
    assert "users:manage" in refused.json()["message"]
    listed = {r["id"]: r for r in client.get("/api/roles/users", auth=caller).json()["data"]}
    assert listed[own_role]["permissions"] == ["roles:get", "roles:manage"]
    # Narrowing or renaming within its rights is fine.
    renamed = client.put(f"/api/roles/users/{own_role}", json={"name": "RM"}, auth=caller)
    assert renamed.status_code == 200, renamed.text


def test_roles_manage_creates_and_changes_only_roles_within_its_rights(
    client: TestClient, session_maker: sessionmaker[Session], role_manager: tuple
) -> None:
    caller, _, _ = role_manager
    everything = {"name": "all", "permissions": sorted(ALL_PERMISSIONS)}
    _denied(client.post("/api/roles/users", json=everything, auth=caller))
    made = client.post(
        "/api/roles/users", json={"name": "viewer", "permissions": ["roles:get"]}, auth=caller
    )
    assert made.status_code == 200, made.text
    _, _, stronger = _admin_user(session_maker, "strong", "settings:manage")
    _denied(client.put(f"/api/roles/users/{stronger}", json={"permissions": []}, auth=caller))
    _denied(client.put(f"/api/roles/users/{stronger}", json={"name": "weak"}, auth=caller))
    # A Super Admin grants anything.
    assert client.post("/api/roles/users", json=everything, auth=ADMIN).status_code == 200


def test_a_role_with_every_permission_still_cannot_grant_super_admin(
    client: TestClient, session_maker: sessionmaker[Session]
) -> None:
    caller, own_id, _ = _admin_user(session_maker, "almost", *sorted(ALL_PERMISSIONS))
    super_admin_role, admin_id = _ids(session_maker)
    _denied(
        client.put(
            f"/api/users/{own_id}/role", json={"user_role_id": super_admin_role}, auth=caller
        )
    )
    _denied(client.put(f"/api/users/{admin_id}", json={"password": "x-password-1"}, auth=caller))
    made = client.post(
        "/api/roles/users", json={"name": "copy", "permissions": ["lists:get_all"]}, auth=caller
    )
    assert made.status_code == 200


def test_the_rule_lives_in_the_services(session_maker: sessionmaker[Session]) -> None:
    limited = Actor(frozenset({"users:manage", "lists:get_all"}), super_admin=False, user_id=None)
    with session_maker() as session:
        super_admin = roles.super_admin_role(session)
        with pytest.raises(Forbidden):
            users.create_api_user(session, "x", role=super_admin, actor=limited)
        with pytest.raises(Forbidden):
            roles.create(session, "wide", ["settings:manage"], actor=limited)
        # `subscribers:get_all` implies `subscribers:get`: holding the broad one is enough.
        reader = Actor(frozenset({"subscribers:get_all", "subscribers:get"}))
        made = roles.create(session, "narrow", ["subscribers:get"], actor=reader)
        assert made.permissions == ["subscribers:get"]
        role = session.get(Role, made.id)
        assert role is not None
        user, _ = users.create_api_user(session, "y", role=role, actor=reader)
        assert isinstance(user, User)
        session.rollback()
