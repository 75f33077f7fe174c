"""Password reset by mail: single-use, expiring links whose tokens are stored only as hashes.

`request_reset` makes a token for each enabled admin the given name or address belongs to (and
that has an address to mail); the caller mails the links and commits. `reset_password` sets the
new password when the token is known, unused and unexpired, marks every open token of that user
used, and ends the user's browser sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from stmails.db.models import PasswordReset, User
from stmails.db.types import utcnow
from stmails.services import sessions, users
from stmails.services.errors import InvalidInput

LIFETIME = timedelta(hours=1)
IDENTIFIER_MAX = 255


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def request_reset(
    session: Session, identifier: str, *, now: datetime | None = None
) -> list[tuple[User, str]]:
    """(user, token) for every enabled admin named `identifier` or whose address it is, that
    has an address; empty when none (the caller must not tell which). The caller commits."""
    identifier = identifier.strip()
    if not identifier or len(identifier) > IDENTIFIER_MAX:
        return []
    now = now or utcnow()
    found = session.scalars(
        select(User).where(
            User.type == "admin",
            User.status == "enabled",
            User.email != "",
            or_(User.username == identifier, func.lower(User.email) == identifier.lower()),
        )
    ).all()
    made = []
    for user in found:
        token = secrets.token_urlsafe(32)
        session.add(
            PasswordReset(
                user_id=user.id,
                token_hash=_digest(token),
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
        made.append((user, token))
    session.flush()
    return made


def valid_user(session: Session, token: str, *, now: datetime | None = None) -> User | None:
    """The user a live (unused, unexpired) reset token belongs to, else None."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    row = session.scalars(
        select(PasswordReset).where(PasswordReset.token_hash == _digest(token))
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.status != "enabled" or user.type != "admin":
        return None
    return user


def reset_password(
    session: Session, token: str, password: str, *, now: datetime | None = None
) -> User:
    """Sets `password` for the user of `token` and spends every open token of that user;
    InvalidInput when the link is unknown, used or expired. The caller commits."""
    now = now or utcnow()
    user = valid_user(session, token, now=now)
    if user is None:
        raise InvalidInput("token", "this reset link is invalid, used or expired")
    users.update_user(session, user, password=password)
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    sessions.revoke_user(session, user.id)
    return user
