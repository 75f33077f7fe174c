"""Browser sessions of the admin UI, kept in the database, and the CSRF tokens bound to them.

A session is a random token in an HttpOnly cookie; the `browser_sessions` row is keyed by the
token's SHA-256, so the table alone opens no session. Each session ends after an idle period
(refreshed at most once a minute, so that a page view does not always write) and at an absolute
limit from sign-in, and at once when it is revoked (logout, password change, user disabled or
deleted). Signing in always starts a new session (a token fixed before sign-in never becomes a
signed-in one); a password check still owing its TOTP code is a session of its own with
`mfa_pending` set and a short life.

CSRF tokens are an HMAC, under the server's secret key, of the value of a secret cookie: the
session's token once signed in, else a random pre-session cookie. A page embeds the token in its
forms and in a meta tag for scripts; a request is accepted only when the token it carries is the
one derived from its own cookie (and, checked by the web layer, when its Origin is ours).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from stmails.db.models import BrowserSession, User
from stmails.db.types import utcnow

# How long a password-checked login may wait for its TOTP code.
MFA_PENDING_LIFETIME = timedelta(minutes=5)
# The idle deadline is pushed forward at most this often.
TOUCH_INTERVAL = timedelta(seconds=60)
USER_AGENT_MAX = 300


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long sessions last: `idle` without a request, `absolute` from sign-in."""

    idle: timedelta = timedelta(minutes=120)
    absolute: timedelta = timedelta(hours=24)


def new_token() -> str:
    """A fresh secret cookie value (32 random bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def token_id(token: str) -> str:
    """The row key of a session token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def start(
    session: Session,
    user: User,
    lifetimes: Lifetimes,
    *,
    mfa_pending: bool = False,
    ip: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> str:
    """Starts a session for `user` and returns its token (the cookie value); the caller
    commits. A pending-MFA session lives MFA_PENDING_LIFETIME at most."""
    now = now or utcnow()
    token = new_token()
    absolute = now + (MFA_PENDING_LIFETIME if mfa_pending else lifetimes.absolute)
    idle = min(absolute, now + lifetimes.idle)
    session.add(
        BrowserSession(
            id=token_id(token),
            user_id=user.id,
            mfa_pending=mfa_pending,
            data={},
            ip=ip[:64],
            user_agent=user_agent[:USER_AGENT_MAX],
            created_at=now,
            last_seen_at=now,
            idle_expires_at=idle,
            expires_at=absolute,
        )
    )
    session.flush()
    return token


def load(
    session: Session, token: str | None, *, now: datetime | None = None
) -> tuple[BrowserSession, User] | None:
    """The live session of `token` and its enabled admin user; None when the token is unknown,
    expired, or its user can no longer sign in. Nothing is written (see `touch`)."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    row = session.execute(
        select(BrowserSession, User)
        .join(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.id == token_id(token))
    ).first()
    if row is None:
        return None
    browser, user = row
    if browser.expires_at <= now or browser.idle_expires_at <= now:
        return None
    if user.status != "enabled" or user.type != "admin":
        return None
    return browser, user


def needs_touch(browser: BrowserSession, *, now: datetime | None = None) -> bool:
    """True when the session's idle deadline is due to be pushed forward."""
    now = now or utcnow()
    return now - browser.last_seen_at >= TOUCH_INTERVAL


def touch(
    session: Session, session_id: str, lifetimes: Lifetimes, *, now: datetime | None = None
) -> None:
    """Pushes the idle deadline of session `session_id` forward (never past its absolute end);
    the caller commits."""
    now = now or utcnow()
    browser = session.get(BrowserSession, session_id)
    if browser is None:
        return
    browser.last_seen_at = now
    browser.idle_expires_at = min(browser.expires_at, now + lifetimes.idle)
    session.flush()


def revoke(session: Session, token: str | None) -> None:
    """Ends the session of `token` (logout); unknown tokens are ignored. The caller commits."""
    if token and len(token) <= 100:
        session.execute(delete(BrowserSession).where(BrowserSession.id == token_id(token)))


def revoke_user(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """Ends every session of `user_id` but the one of token `keep`; returns how many ended."""
    statement = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if keep:
        statement = statement.where(BrowserSession.id != token_id(keep))
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def set_data(session: Session, session_id: str, **values: Any) -> None:
    """Merges `values` into the session's data (a value None removes its key)."""
    browser = session.get(BrowserSession, session_id)
    if browser is None:
        return
    merged = dict(browser.data or {})
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    session.execute(
        update(BrowserSession).where(BrowserSession.id == session_id).values(data=merged)
    )


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Deletes the rows of sessions that have ended; returns how many."""
    now = now or utcnow()
    result = session.execute(
        delete(BrowserSession).where(
            (BrowserSession.expires_at <= now) | (BrowserSession.idle_expires_at <= now)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def csrf_token(key: bytes, binding: str) -> str:
    """The CSRF token of the secret cookie value `binding` under the server key `key`."""
    mac = hmac.new(key, b"stmails-csrf\x00" + binding.encode("utf-8", "surrogateescape"), "sha256")
    return mac.hexdigest()


def csrf_valid(key: bytes, binding: str | None, token: str | None) -> bool:
    """True when `token` is the CSRF token of `binding` (compared in constant time)."""
    if not binding or not token or len(token) != 64:
        return False
    return hmac.compare_digest(csrf_token(key, binding), token)
