"""What a signed-in admin changes about its own account, and the creation of the first admin.

The profile holds a display name, the address password-reset mail goes to, and the interface
language ('' follows the browser). The first admin can be made from the first-run page only
while no admin user exists at all; two first-run requests at once make one admin, not two.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import Role, User
from stmails.services import roles, users
from stmails.services.errors import Conflict, InvalidInput

# The interface languages; '' means "follow the browser".
LOCALES = ("en", "zh_CN")
NAME_MAX = 200
EMAIL_MAX = 255


def admin_exists(session: Session) -> bool:
    """True when any admin (password) user exists, enabled or not."""
    count = session.scalar(select(func.count()).select_from(User).where(User.type == "admin"))
    return bool(count)


def create_first_admin(
    session: Session, username: str, password: str, *, email: str = "", name: str = ""
) -> User:
    """The first admin (Super Admin role); Conflict when an admin exists already. The caller
    commits."""
    role = roles.super_admin_role(session)
    session.flush()
    # Lock the role's row so that a concurrent first run on PostgreSQL counts after this one
    # commits (SQLite write transactions are serial already).
    session.execute(select(Role.id).where(Role.id == role.id).with_for_update())
    if admin_exists(session):
        raise Conflict("username", "an admin user exists already; sign in instead")
    user = users.create_admin(session, username, password, role=role)
    update_profile(session, user, name=name, email=email)
    return user


def check_email(email: str) -> str:
    """`email` in its normalized form ('' stays ''); InvalidInput when it is not an address."""
    email = email.strip()
    if not email:
        return ""
    if len(email) > EMAIL_MAX:
        raise InvalidInput("email", f"longer than {EMAIL_MAX} characters")
    try:
        checked = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("email", str(exc)) from None
    return str(checked.normalized)


def update_profile(
    session: Session,
    user: User,
    *,
    name: str | None = None,
    email: str | None = None,
    locale: str | None = None,
) -> User:
    """Changes the given profile fields of `user`; InvalidInput names a bad one."""
    if name is not None:
        name = name.strip()
        if len(name) > NAME_MAX or any(ch in name for ch in "\r\n\t"):
            raise InvalidInput("name", f"must be at most {NAME_MAX} characters on one line")
        user.name = name
    if email is not None:
        user.email = check_email(email)
    if locale is not None:
        if locale not in ("", *LOCALES):
            raise InvalidInput("locale", f"must be one of {', '.join(LOCALES)} or empty")
        user.locale = locale
    session.flush()
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """Sets `new` as the password of `user` when `current` is its password; InvalidInput
    otherwise. The caller hashes under the login guard's gate and commits."""
    if not users.verify_password(current, user.password_hash):
        raise InvalidInput("current_password", "is not your current password")
    users.update_user(session, user, password=new)
