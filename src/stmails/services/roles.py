"""User roles: named sets of permissions, with listmonk's permission names (listmonk >= v4).

Every user has exactly one user role (and may have a list role: services.list_roles). The
built-in "Super Admin" role grants every permission, now and in future versions (whatever its
row stores), and can be neither changed nor deleted; it is made on first use, so every database
has it. The functions here deal with user roles (`type` user), except `get` and `delete`, which
take either kind as listmonk's `DELETE /api/roles/{id}` does.

Who may grant what (the rule every route and command goes through, `Actor` and the checks
below): a caller grants only permissions it holds itself, whether it makes or changes a role or
gives a user a role, and manages only roles and users whose permissions it holds. Only a Super
Admin gives the Super Admin role, manages Super Admin users or sets another password user's
password. The command line and start-up act as `OPERATOR` (whoever can run them can edit the
database).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import Role, User
from stmails.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from stmails.services.pages import get_or_404

SUPER_ADMIN = "Super Admin"
ROLE_NAME_MAX = 200

# Every permission, grouped by resource. The names are listmonk's where listmonk has the
# feature; suppressions, verification, domains, deliverability and the SMTP relay are stmails'
# own resources.
PERMISSION_GROUPS: dict[str, tuple[str, ...]] = {
    "lists": ("lists:get_all", "lists:manage_all"),
    "subscribers": (
        "subscribers:get",
        "subscribers:get_all",
        "subscribers:manage",
        "subscribers:import",
        "subscribers:sql_query",
        "tx:send",
    ),
    # campaigns:get / campaigns:manage: the campaigns of the lists the user's list role (or
    # lists:get_all / lists:manage_all) opens to it (web.list_scope).
    "campaigns": (
        "campaigns:get",
        "campaigns:get_all",
        "campaigns:manage",
        "campaigns:manage_all",
        "campaigns:send",
        "campaigns:get_analytics",
    ),
    "bounces": ("bounces:get", "bounces:manage", "webhooks:post_bounce"),
    "media": ("media:get", "media:manage"),
    "templates": ("templates:get", "templates:manage"),
    "users": ("users:get", "users:manage", "roles:get", "roles:manage"),
    "settings": ("settings:get", "settings:manage", "settings:maintain"),
    "suppressions": ("suppressions:get", "suppressions:manage"),
    "verify": ("verify:run",),
    # Sending domains: DKIM keys, the domain check and DMARC reports (stmails' own).
    "domains": ("domains:get", "domains:manage"),
    "deliverability": ("deliverability:get",),
    # Deliverability alerts: reading them, acknowledging them and releasing held domains.
    "alerts": ("alerts:get", "alerts:manage"),
    # List hygiene: the sunset policy's transitions (undo), its dry run, the scheduler.
    "hygiene": ("hygiene:get", "hygiene:manage"),
    # Submitting mail through `stmails relay` (SMTP AUTH as an API user).
    "relay": ("relay:send",),
}
ALL_PERMISSIONS: frozenset[str] = frozenset(
    p for group in PERMISSION_GROUPS.values() for p in group
)

# A broader permission includes a narrower one: reading every subscriber includes reading one.
IMPLIED: dict[str, tuple[str, ...]] = {
    "subscribers:get_all": ("subscribers:get",),
    "campaigns:get_all": ("campaigns:get",),
    "campaigns:manage_all": ("campaigns:manage",),
    "alerts:manage": ("alerts:get",),
}


def is_super_admin(role: Role) -> bool:
    """True for the built-in role that grants everything (a user role by that name)."""
    return role.name == SUPER_ADMIN and role.type in ("user", None)


def effective_permissions(role: Role) -> frozenset[str]:
    """What `role` grants: everything for Super Admin, else its permissions and what they imply.

    Names no longer known (from a newer or older version) grant nothing.
    """
    if is_super_admin(role):
        return ALL_PERMISSIONS
    return _with_implied(role.permissions or ())


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change to users or roles: what its own role grants, whether that role is
    Super Admin, and the lists its list role opens to it for reading (`list_get`) and managing
    (`list_manage`). `user_id` is the acting user (None for the operator)."""

    permissions: frozenset[str]
    super_admin: bool = False
    user_id: int | None = None
    list_get: frozenset[int] = frozenset()
    list_manage: frozenset[int] = frozenset()


# The command line and start-up: whoever runs them can edit the database anyway.
OPERATOR = Actor(ALL_PERMISSIONS, super_admin=True)


def actor_for(user: User) -> Actor:
    """The actor a user is."""
    get, manage = list_grants(user.list_role)
    return Actor(effective_permissions(user.role), is_super_admin(user.role), user.id, get, manage)


def list_grants(role: Role | None) -> tuple[frozenset[int], frozenset[int]]:
    """The lists a list role opens for reading (`list:get`) and for managing (`list:manage`);
    nothing for None."""
    if role is None or role.type != "list":
        return frozenset(), frozenset()
    get = frozenset(g.list_id for g in role.lists if "list:get" in (g.permissions or ()))
    manage = frozenset(g.list_id for g in role.lists if "list:manage" in (g.permissions or ()))
    return get, manage


def _with_implied(permissions: Iterable[str]) -> frozenset[str]:
    granted = set(permissions) & ALL_PERMISSIONS
    for permission in list(granted):
        granted.update(IMPLIED.get(permission, ()))
    return frozenset(granted)


def check_within(actor: Actor, permissions: Iterable[str], what: str) -> None:
    """Forbidden when `permissions` include one `actor` does not hold; `what` says what the
    actor was doing ("grant", "change role 'Editors'", ...)."""
    if actor.super_admin:
        return
    missing = sorted(_with_implied(permissions) - actor.permissions)
    if missing:
        raise Forbidden(f"permission denied: cannot {what} {missing[0]}, which you do not hold")


def check_lists_within(
    actor: Actor, get: frozenset[int], manage: frozenset[int], what: str
) -> None:
    """Forbidden unless `actor` holds every list grant of `get` (reading: lists:get_all or its
    own list:get on the list) and `manage` (lists:manage_all or its own list:manage)."""
    if actor.super_admin:
        return
    for needed, everything, own, lists in (
        ("list:get", "lists:get_all", actor.list_get, get),
        ("list:manage", "lists:manage_all", actor.list_manage, manage),
    ):
        if everything in actor.permissions:
            continue
        missing = sorted(lists - own)
        if missing:
            raise Forbidden(
                f"permission denied: cannot {what} {needed} on list {missing[0]},"
                " which you do not hold"
            )


def check_can_grant(actor: Actor, role: Role) -> None:
    """Forbidden unless `actor` may give `role` to a user: Super Admin only by a Super Admin,
    any other role only with every permission it grants."""
    if is_super_admin(role):
        if not actor.super_admin:
            raise Forbidden(f"permission denied: only a {SUPER_ADMIN} may grant {SUPER_ADMIN}")
        return
    check_within(actor, effective_permissions(role), f"grant role {role.name!r} with")
    check_lists_within(actor, *list_grants(role), f"grant role {role.name!r} with")


def listed_permissions(role: Role) -> list[str]:
    """The permissions shown for `role` (sorted; every permission for Super Admin)."""
    if is_super_admin(role):
        return sorted(ALL_PERMISSIONS)
    return sorted(set(role.permissions or ()))


def check_permissions(permissions: Iterable[str]) -> list[str]:
    """The permissions, deduplicated and sorted; InvalidInput naming the first unknown one."""
    wanted = set()
    for permission in permissions:
        if permission not in ALL_PERMISSIONS:
            raise InvalidInput("permissions", f"unknown permission {permission!r}")
        wanted.add(permission)
    return sorted(wanted)


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > ROLE_NAME_MAX:
        raise InvalidInput("name", f"must be 1-{ROLE_NAME_MAX} characters")
    # The name is what makes the built-in role: no other role may take it, even before the
    # built-in one has been made.
    if cleaned == SUPER_ADMIN:
        raise Conflict("name", f"{SUPER_ADMIN!r} is the built-in role")
    return cleaned


def super_admin_role(session: Session) -> Role:
    """The Super Admin role, made when the database does not have it yet."""
    found = get_by_name(session, SUPER_ADMIN)
    if found is not None:
        return found
    role = Role(name=SUPER_ADMIN, type="user", permissions=sorted(ALL_PERMISSIONS))
    try:
        with session.begin_nested():
            session.add(role)
    except IntegrityError:
        # Another process made it at the same moment.
        made = get_by_name(session, SUPER_ADMIN)
        if made is None:
            raise
        return made
    return role


def get_by_name(session: Session, name: str) -> Role | None:
    """The user role named `name`, or None."""
    return session.scalars(select(Role).where(Role.type == "user", Role.name == name)).first()


def find(session: Session, name: str) -> Role | None:
    """The role named `name` (Super Admin is made when missing), or None."""
    if name == SUPER_ADMIN:
        return super_admin_role(session)
    return get_by_name(session, name)


def get(session: Session, role_id: int, kind: str | None = None) -> Role:
    """The role with id `role_id` (of type `kind` when given); NotFound otherwise."""
    found = get_or_404(session, Role, role_id, "role")
    if kind is not None and found.type != kind:
        raise NotFound(f"{kind} role {role_id} not found")
    return found


def list_roles(session: Session) -> Sequence[Role]:
    """Every user role, Super Admin first (it is made when missing), then by id."""
    super_admin_role(session)
    roles = session.scalars(select(Role).where(Role.type == "user").order_by(Role.id)).all()
    return sorted(roles, key=lambda r: not is_super_admin(r))


def create(
    session: Session, name: str, permissions: Iterable[str], *, actor: Actor = OPERATOR
) -> Role:
    """A new role; InvalidInput for a bad name or unknown permission, Conflict for a taken name,
    Forbidden when it would grant a permission `actor` does not hold."""
    wanted = check_permissions(permissions)
    check_within(actor, wanted, "grant")
    role = Role(name=_check_name(name), type="user", permissions=wanted)
    try:
        with session.begin_nested():
            session.add(role)
    except IntegrityError:
        raise Conflict("name", f"role {role.name!r} exists") from None
    return role


def update(
    session: Session,
    role: Role,
    *,
    name: str | None,
    permissions: Iterable[str] | None,
    actor: Actor = OPERATOR,
) -> Role:
    """Renames `role` and/or replaces its permissions; Super Admin cannot be changed. Forbidden
    when the role grants, or would grant, a permission `actor` does not hold (so nobody widens
    a role, their own included, beyond their own rights)."""
    if is_super_admin(role):
        raise InvalidInput("id", f"the {SUPER_ADMIN} role cannot be changed")
    if role.type != "user":
        raise NotFound(f"user role {role.id} not found")
    check_within(actor, effective_permissions(role), f"change role {role.name!r}, which grants")
    if permissions is not None:
        wanted = check_permissions(permissions)
        check_within(actor, wanted, "grant")
        role.permissions = wanted
    if name is not None:
        role.name = _check_name(name)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("name", f"role {role.name!r} exists") from None
    return role


def delete(session: Session, role: Role, *, actor: Actor = OPERATOR) -> None:
    """Deletes `role` (a user or list role); refused for Super Admin (InvalidInput), while a
    user has it (Conflict) and when it grants what `actor` does not hold (Forbidden)."""
    if is_super_admin(role):
        raise InvalidInput("id", f"the {SUPER_ADMIN} role cannot be deleted")
    check_within(actor, effective_permissions(role), f"delete role {role.name!r}, which grants")
    check_lists_within(actor, *list_grants(role), f"delete role {role.name!r}, which grants")
    holders = session.scalar(
        select(func.count())
        .select_from(User)
        .where(or_(User.role_id == role.id, User.list_role_id == role.id))
    )
    if holders:
        raise Conflict("id", f"role {role.name!r} is assigned to {holders} user(s)")
    try:
        with session.begin_nested():
            session.delete(role)
    except IntegrityError:
        # A user was given the role meanwhile; the foreign key refused the delete.
        raise Conflict("id", f"role {role.name!r} is assigned to a user") from None
