"""Profiles, the first admin, and password reset tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import PasswordReset
from stmails.db.types import utcnow
from stmails.services import accounts, password_resets, sessions, users
from stmails.services.errors import Conflict, InvalidInput


def test_the_first_admin_is_made_only_while_none_exists(session: Session) -> None:
    assert not accounts.admin_exists(session)
    user = accounts.create_first_admin(
        session, "founder", "password-1234", email="Founder@Example.COM", name="F"
    )
    assert user.email == "Founder@example.com" and user.role.name == "Super Admin"
    with pytest.raises(Conflict):
        accounts.create_first_admin(session, "second", "password-1234")


def test_profile_fields_are_checked(session: Session) -> None:
    user = users.create_admin(session, "frank", "password-1234")
    accounts.update_profile(session, user, name=" Frank ", email="", locale="zh_CN")
    assert (user.name, user.email, user.locale) == ("Frank", "", "zh_CN")
    with pytest.raises(InvalidInput, match="email"):
        accounts.update_profile(session, user, email="not an address")
    with pytest.raises(InvalidInput, match="locale"):
        accounts.update_profile(session, user, locale="fr")
    with pytest.raises(InvalidInput, match="name"):
        accounts.update_profile(session, user, name="two\nlines")


def test_password_change_needs_the_current_password(session: Session) -> None:
    user = users.create_admin(session, "gina", "password-1234")
    with pytest.raises(InvalidInput, match="current_password"):
        accounts.change_password(session, user, "wrong", "new-password-1")
    accounts.change_password(session, user, "password-1234", "new-password-1")
    assert users.verify_password("new-password-1", user.password_hash)


def test_reset_tokens_are_hashed_single_use_and_expiring(session: Session) -> None:
    user = users.create_admin(session, "hank", "password-1234")
    accounts.update_profile(session, user, email="hank@example.com")
    other = users.create_admin(session, "ivy", "password-1234")
    session.flush()
    # Nobody without an address, and no hint which names exist.
    assert password_resets.request_reset(session, "ivy") == []
    assert password_resets.request_reset(session, "nobody") == []
    made = password_resets.request_reset(session, "HANK@example.com")
    assert [u.id for u, _ in made] == [user.id]
    token = made[0][1]
    stored = session.scalars(select(PasswordReset.token_hash)).one()
    assert token not in stored and len(stored) == 64
    live = sessions.start(session, user, sessions.Lifetimes())
    password_resets.reset_password(session, token, "fresh-password-1")
    assert users.verify_password("fresh-password-1", user.password_hash)
    # The user's sessions ended; the token is spent.
    assert sessions.load(session, live) is None
    with pytest.raises(InvalidInput, match="token"):
        password_resets.reset_password(session, token, "again-password-1")
    assert other.password_hash and users.verify_password("password-1234", other.password_hash)


def test_reset_tokens_expire_after_an_hour(session: Session) -> None:
    user = users.create_admin(session, "jack", "password-1234")
    accounts.update_profile(session, user, email="jack@example.com")
    start = utcnow()
    (_, token), *_ = password_resets.request_reset(session, "jack", now=start)
    assert password_resets.valid_user(session, token, now=start + timedelta(minutes=59))
    late = start + password_resets.LIFETIME + timedelta(seconds=1)
    with pytest.raises(InvalidInput):
        password_resets.reset_password(session, token, "late-password-1", now=late)
