"""Browser sessions: stored by token hash, idle and absolute expiry, revocation, CSRF tokens."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import BrowserSession, User
from stmails.db.types import utcnow
from stmails.services import sessions, users

LIFETIMES = sessions.Lifetimes(idle=timedelta(minutes=30), absolute=timedelta(hours=8))


def _admin(session: Session, name: str = "alice") -> User:
    user = users.create_admin(session, name, "password-1234")
    session.flush()
    return user


def test_the_table_holds_only_a_hash_of_the_token(session: Session) -> None:
    user = _admin(session)
    token = sessions.start(session, user, LIFETIMES, ip="192.0.2.1", user_agent="x" * 500)
    row = session.scalars(select(BrowserSession)).one()
    assert row.id == sessions.token_id(token) and token not in row.id
    assert len(row.user_agent) == sessions.USER_AGENT_MAX
    found = sessions.load(session, token)
    assert found is not None and found[1].id == user.id
    assert sessions.load(session, token + "x") is None
    assert sessions.load(session, None) is None


def test_idle_and_absolute_expiry(session: Session) -> None:
    user = _admin(session)
    start = utcnow()
    token = sessions.start(session, user, LIFETIMES, now=start)
    assert sessions.load(session, token, now=start + timedelta(minutes=29)) is not None
    assert sessions.load(session, token, now=start + timedelta(minutes=31)) is None
    # Activity pushes the idle deadline, never past the absolute end.
    row = session.get(BrowserSession, sessions.token_id(token))
    assert row is not None
    for minutes in range(20, 8 * 60, 20):
        sessions.touch(session, row.id, LIFETIMES, now=start + timedelta(minutes=minutes))
    assert sessions.load(session, token, now=start + timedelta(hours=7, minutes=50)) is not None
    assert sessions.load(session, token, now=start + timedelta(hours=8, minutes=1)) is None
    assert sessions.purge_expired(session, now=start + timedelta(hours=9)) == 1


def test_touch_is_needed_at_most_once_a_minute(session: Session) -> None:
    user = _admin(session)
    start = utcnow()
    token = sessions.start(session, user, LIFETIMES, now=start)
    row = session.get(BrowserSession, sessions.token_id(token))
    assert row is not None
    assert not sessions.needs_touch(row, now=start + timedelta(seconds=30))
    assert sessions.needs_touch(row, now=start + timedelta(seconds=61))


def test_mfa_pending_sessions_are_short(session: Session) -> None:
    user = _admin(session)
    start = utcnow()
    token = sessions.start(session, user, LIFETIMES, mfa_pending=True, now=start)
    found = sessions.load(session, token, now=start + timedelta(minutes=4))
    assert found is not None and found[0].mfa_pending
    assert sessions.load(session, token, now=start + timedelta(minutes=6)) is None


def test_revocation_and_disabled_users(session: Session) -> None:
    alice, bob = _admin(session), _admin(session, "bob")
    first = sessions.start(session, alice, LIFETIMES)
    second = sessions.start(session, alice, LIFETIMES)
    other = sessions.start(session, bob, LIFETIMES)
    assert sessions.revoke_user(session, alice.id, keep=second) == 1
    assert sessions.load(session, first) is None and sessions.load(session, second) is not None
    sessions.revoke(session, second)
    assert sessions.load(session, second) is None
    bob.status = "disabled"
    session.flush()
    assert sessions.load(session, other) is None


def test_session_data_merges_and_removes(session: Session) -> None:
    user = _admin(session)
    token = sessions.start(session, user, LIFETIMES)
    key = sessions.token_id(token)
    sessions.set_data(session, key, a="1", b="2")
    sessions.set_data(session, key, a=None)
    session.expire_all()
    row = session.get(BrowserSession, key)
    assert row is not None and row.data == {"b": "2"}


def test_csrf_tokens_are_bound_to_their_cookie_and_key() -> None:
    key = b"k" * 32
    token = sessions.csrf_token(key, "cookie-value")
    assert sessions.csrf_valid(key, "cookie-value", token)
    assert not sessions.csrf_valid(key, "another-cookie", token)
    assert not sessions.csrf_valid(b"x" * 32, "cookie-value", token)
    assert not sessions.csrf_valid(key, None, token)
    assert not sessions.csrf_valid(key, "cookie-value", None)
    assert not sessions.csrf_valid(key, "cookie-value", token[:-1])
