"""services.roles and the role rules of services.users: Super Admin by default and for good,
permissions checked and implied, roles in use kept, the last Super Admin kept."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from stmails.db.models import Role
from stmails.services import roles, users
from stmails.services.errors import Conflict, InvalidInput


def test_users_made_without_a_role_are_super_admins(session: Session) -> None:
    admin = users.create_admin(session, "admin", "admin-password-1")
    bot, _ = users.create_api_user(session, "bot")
    ensured = users.ensure_api_user(session, "auto", "auto-token-123")
    assert {admin.role_id, bot.role_id, ensured.role_id} == {roles.super_admin_role(session).id}
    assert roles.effective_permissions(admin.role) == roles.ALL_PERMISSIONS
    # The built-in role is made once.
    assert len(roles.list_roles(session)) == 1


def test_super_admin_grants_everything_whatever_its_row_says(session: Session) -> None:
    super_admin = roles.super_admin_role(session)
    # A row written by an older version, before some permission existed.
    super_admin.permissions = ["lists:get_all"]
    assert roles.effective_permissions(super_admin) == roles.ALL_PERMISSIONS
    assert roles.listed_permissions(super_admin) == sorted(roles.ALL_PERMISSIONS)


def test_effective_permissions_imply_and_ignore_unknown_names() -> None:
    role = Role(name="R", permissions=["subscribers:get_all", "lists:get"])
    assert roles.effective_permissions(role) == {"subscribers:get_all", "subscribers:get"}


def test_role_rules(session: Session) -> None:
    with pytest.raises(InvalidInput, match="unknown permission 'lists:get'"):
        roles.create(session, "R", ["lists:get"])
    with pytest.raises(InvalidInput, match="name"):
        roles.create(session, "  ", [])
    # Reserved even before the built-in role exists.
    assert roles.get_by_name(session, roles.SUPER_ADMIN) is None
    with pytest.raises(Conflict, match="built-in"):
        roles.create(session, " Super Admin ", ["lists:get_all"])
    reader = roles.create(session, "Reader", ["bounces:get"])
    with pytest.raises(Conflict):
        roles.create(session, "reader".title(), [])
    super_admin = roles.super_admin_role(session)
    with pytest.raises(InvalidInput):
        roles.update(session, super_admin, name=None, permissions=[])
    with pytest.raises(InvalidInput):
        roles.delete(session, super_admin)
    bot, _ = users.create_api_user(session, "bot", role=reader)
    with pytest.raises(Conflict, match="assigned"):
        roles.delete(session, reader)
    users.update_user(session, bot, role=super_admin)
    roles.delete(session, reader)
    assert roles.get_by_name(session, "Reader") is None


def test_the_last_enabled_super_admin_is_kept(session: Session) -> None:
    reader = roles.create(session, "Reader", ["bounces:get"])
    admin = users.create_admin(session, "admin", "admin-password-1")
    other = users.create_admin(session, "other", "other-password-1", status="disabled")
    for change in (
        lambda: users.delete(session, admin),
        lambda: users.update_user(session, admin, status="disabled"),
        lambda: users.update_user(session, admin, role=reader),
    ):
        with pytest.raises(Conflict, match="last enabled Super Admin"):
            change()
    # A disabled Super Admin does not count; once enabled, the first one may go.
    users.update_user(session, other, status="enabled")
    users.delete(session, admin)
    assert users.get_by_username(session, "admin") is None
    bot, _ = users.create_api_user(session, "bot")
    with pytest.raises(InvalidInput, match="password"):
        users.update_user(session, bot, password="a-new-password")


def test_ensure_api_user_takes_a_configured_role(session: Session) -> None:
    reader = roles.create(session, "Reader", ["bounces:get"])
    made = users.ensure_api_user(session, "auto", "auto-token-123", role_name="Reader")
    assert made.role_id == reader.id
    # Without a configured role an existing user keeps its role.
    assert users.ensure_api_user(session, "auto", "auto-token-123").role_id == reader.id
    again = users.ensure_api_user(session, "auto", "auto-token-123", role_name="Super Admin")
    assert roles.is_super_admin(again.role)
    with pytest.raises(InvalidInput, match="api_user_role"):
        users.ensure_api_user(session, "auto", "auto-token-123", role_name="Nope")
