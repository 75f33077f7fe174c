"""Admin and API users, and the checking of their secrets.

Passwords (chosen by people, so guessable) are hashed with scrypt and a random salt. API tokens
are 32 random bytes made here, so a brute-force search is hopeless whatever the hash; they are
kept as a salted SHA-256, which is cheap enough to check on every API request. Every comparison
uses `hmac.compare_digest`. Secrets never leave this module except once, when they are made.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import USER_STATUSES, Role, User
from stmails.db.types import utcnow
from stmails.services import roles
from stmails.services.errors import Conflict, Forbidden, InvalidInput
from stmails.services.pages import get_or_404
from stmails.services.roles import OPERATOR, Actor

# scrypt cost: n=2**14, r=8, p=1 (about 16 MB and tens of milliseconds per check).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 8
USERNAME_MAX = 200


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$digest` for `password`, with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches the `hash_password` result `stored`."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        # The cost comes from the stored value, capped so a tampered row cannot exhaust memory.
        if int(n) > 2**20 or int(r) > 32 or int(p) > 16:
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(_unb64(digest)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def hash_token(token: str) -> str:
    """`sha256$salt$digest` for an API token, with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + token.encode("utf-8")).digest()
    return f"sha256${_b64(salt)}${_b64(digest)}"


def verify_token(token: str, stored: str | None) -> bool:
    """True when `token` matches the `hash_token` result `stored`."""
    if not stored:
        return False
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "sha256":
            return False
        got = hashlib.sha256(_unb64(salt) + token.encode("utf-8")).digest()
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def new_secret() -> str:
    """A new random token or password (32 bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def _check_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > USERNAME_MAX or any(c in name for c in ":\r\n\t "):
        raise InvalidInput("username", "must be 1-200 characters without spaces or ':'")
    return name


def _insert(session: Session, user: User) -> User:
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise Conflict("username", f"user {user.username!r} exists") from None
    return user


def get_by_username(session: Session, username: str) -> User | None:
    """The user named `username`, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _check_type(role: Role, kind: str, field: str) -> None:
    if role.type != kind:
        raise InvalidInput(field, f"role {role.id} is not a {kind} role")


def _check_status(status: str) -> str:
    if status not in USER_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(USER_STATUSES)}")
    return status


def create_admin(
    session: Session,
    username: str,
    password: str,
    *,
    role: Role | None = None,
    status: str = "enabled",
    actor: Actor = OPERATOR,
    list_role: Role | None = None,
) -> User:
    """A new admin user with `password` (at least 8 characters), `role` (default Super Admin)
    and `list_role`; Conflict if the name is taken, Forbidden if `actor` may not grant the
    roles."""
    role = _grantable(session, actor, role, list_role)
    user = User(
        username=_check_username(username),
        type="admin",
        status=_check_status(status),
        role=role,
        list_role=list_role,
    )
    user.password_hash = hash_password(_check_password(password))
    return _insert(session, user)


def create_api_user(
    session: Session,
    username: str,
    token: str | None = None,
    *,
    role: Role | None = None,
    status: str = "enabled",
    actor: Actor = OPERATOR,
    list_role: Role | None = None,
) -> tuple[User, str]:
    """A new API user with `role` (default Super Admin), `list_role` and its token (generated
    unless given); the token is shown only here. Forbidden if `actor` may not grant the
    roles."""
    role = _grantable(session, actor, role, list_role)
    token = token or new_secret()
    if len(token) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("token", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user = User(
        username=_check_username(username),
        type="api",
        status=_check_status(status),
        token_hash=hash_token(token),
        role=role,
        list_role=list_role,
    )
    return _insert(session, user), token


def _grantable(session: Session, actor: Actor, role: Role | None, list_role: Role | None) -> Role:
    """`role` (Super Admin when None), once `actor` is found to be allowed to grant it and
    `list_role` (each of the right type)."""
    role = role or roles.super_admin_role(session)
    _check_type(role, "user", "user_role_id")
    roles.check_can_grant(actor, role)
    if list_role is not None:
        _check_type(list_role, "list", "list_role_id")
        roles.check_can_grant(actor, list_role)
    return role


def get(session: Session, user_id: int) -> User:
    """The user with id `user_id`; NotFound otherwise."""
    return get_or_404(session, User, user_id, "user")


def list_users(session: Session) -> Sequence[User]:
    """Every user, by id."""
    return session.scalars(select(User).order_by(User.id)).all()


def _is_active_super_admin(user: User) -> bool:
    return user.status == "enabled" and roles.is_super_admin(user.role)


def _keep_a_super_admin(session: Session, user: User, change: str) -> None:
    """Conflict when `user` is the last enabled Super Admin user: nobody could administer
    users and roles any more once it were gone."""
    if not _is_active_super_admin(user):
        return
    # Two transactions demoting the last two Super Admins at once must not both see the other
    # one still there: locking the role's row makes them count one after the other
    # (PostgreSQL; SQLite write transactions are serial already).
    session.execute(select(Role.id).where(Role.id == user.role_id).with_for_update())
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.id != user.id, User.status == "enabled", User.role_id == user.role_id)
    )
    if not others:
        raise Conflict("id", f"cannot {change} the last enabled {roles.SUPER_ADMIN} user")


def check_can_manage(actor: Actor, user: User) -> None:
    """Forbidden unless `actor` may change or delete `user`: a Super Admin user only by a Super
    Admin, any other user only with every permission its role grants."""
    if roles.is_super_admin(user.role) and not actor.super_admin:
        raise Forbidden(
            f"permission denied: only a {roles.SUPER_ADMIN} may manage a {roles.SUPER_ADMIN} user"
        )
    roles.check_within(
        actor,
        roles.effective_permissions(user.role),
        f"manage user {user.username!r}, whose role grants",
    )
    roles.check_lists_within(
        actor,
        *roles.list_grants(user.list_role),
        f"manage user {user.username!r}, whose list role grants",
    )


def update_user(
    session: Session,
    user: User,
    *,
    username: str | None = None,
    password: str | None = None,
    status: str | None = None,
    role: Role | None = None,
    list_role: Role | None = None,
    set_list_role: bool = False,
    actor: Actor = OPERATOR,
) -> User:
    """Changes the given fields of `user`; with `set_list_role`, its list role becomes
    `list_role` (None: no list role). A password applies to admin users only. The last enabled
    Super Admin user cannot be disabled or given another role (Conflict). Forbidden when
    `actor` may not manage `user` (`check_can_manage`) or grant `role` or `list_role`, or sets
    the password of another user without being a Super Admin."""
    check_can_manage(actor, user)
    if role is not None:
        _check_type(role, "user", "user_role_id")
        roles.check_can_grant(actor, role)
    if set_list_role and list_role is not None:
        _check_type(list_role, "list", "list_role_id")
        roles.check_can_grant(actor, list_role)
    if password is not None and user.id != actor.user_id and not actor.super_admin:
        raise Forbidden(
            f"permission denied: only a {roles.SUPER_ADMIN} may set another user's password"
        )
    if status is not None and _check_status(status) != "enabled":
        _keep_a_super_admin(session, user, "disable")
    if role is not None and not roles.is_super_admin(role):
        _keep_a_super_admin(session, user, "change the role of")
    if password is not None:
        if user.type != "admin":
            raise InvalidInput("password", "API users authenticate with their generated token")
        user.password_hash = hash_password(_check_password(password))
    if username is not None:
        user.username = _check_username(username)
    if status is not None:
        user.status = status
    if role is not None:
        user.role = role
    if set_list_role:
        user.list_role = list_role
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("username", f"user {user.username!r} exists") from None
    return user


def delete(session: Session, user: User, *, actor: Actor = OPERATOR) -> None:
    """Deletes `user`; Conflict when it is the last enabled Super Admin user, Forbidden when
    `actor` may not manage it."""
    check_can_manage(actor, user)
    _keep_a_super_admin(session, user, "delete")
    session.delete(user)
    session.flush()


@dataclass(frozen=True, slots=True)
class Ensured:
    """What `ensure_admin` did: the user, and the generated password when it made one."""

    user: User
    created: bool
    generated_password: str | None


def ensure_admin(session: Session, username: str, password: str | None) -> Ensured:
    """Make sure admin `username` exists (run at start).

    A missing admin is created with `password`, or with a generated one that is returned once
    (for printing). An existing admin gets `password` when it is given and differs, so that
    `STMAILS_ADMIN_PASSWORD` stays authoritative; otherwise it is left alone.
    """
    user = get_by_username(session, username)
    if user is None:
        generated = None if password else new_secret()
        made = create_admin(session, username, password or generated or "")
        return Ensured(made, True, generated)
    if password and not verify_password(password, user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return Ensured(user, False, None)


def ensure_api_user(
    session: Session, username: str, token: str, *, role_name: str | None = None
) -> User:
    """Make sure API user `username` exists and accepts `token` (STMAILS_API_USER/TOKEN).

    A new user gets the role named `role_name` (default Super Admin); an existing one is given
    that role when a name is passed, and otherwise keeps the role it has. An unknown role name
    is InvalidInput.
    """
    role = None
    if role_name is not None:
        role = roles.find(session, role_name)
        if role is None:
            raise InvalidInput("api_user_role", f"no role named {role_name!r}")
    user = get_by_username(session, username)
    if user is None:
        return create_api_user(session, username, token, role=role)[0]
    if user.type != "api":
        raise Conflict("username", f"{username!r} is not an API user")
    if not verify_token(token, user.token_hash):
        user.token_hash = hash_token(token)
    if role is not None and user.role_id != role.id:
        user.role = role
    session.flush()
    return user


def authenticate_password(
    session: Session, username: str, password: str, *, now: datetime | None = None
) -> User | None:
    """The enabled admin whose password this is, else None. Nothing is written (the caller
    notes the login with `note_login`, in a write transaction of its own)."""
    user = get_by_username(session, username)
    if user is None or user.status != "enabled" or user.type != "admin":
        # Spend the same time as a real check so that names cannot be probed by timing.
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, user.password_hash):
        return None
    return user


def note_login(session: Session, user_id: int, *, now: datetime | None = None) -> None:
    """Sets the user's last_login (the caller commits)."""
    session.execute(update(User).where(User.id == user_id).values(last_login=now or utcnow()))


def authenticate_token(session: Session, username: str, token: str) -> User | None:
    """The enabled API user whose token this is, else None. Nothing is written."""
    user = get_by_username(session, username)
    if user is None or user.status != "enabled" or user.type != "api":
        return None
    return user if verify_token(token, user.token_hash) else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(new_secret())
