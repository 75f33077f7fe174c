"""listmonk's list roles: named sets of per-list grants (`list:get`, `list:manage`).

A user may have one list role beside its user role. For a user whose user role lacks
`lists:get_all` / `lists:manage_all`, the list role says which lists it may read and manage,
and so which subscribers and campaigns (web.list_scope enforces it on every list-scoped
route). Deleting a list removes its grants; a list role in use cannot be deleted
(services.roles.delete).

The M1 rule holds here too: a caller grants only what it holds. Making, changing or deleting a
list role, or giving one to a user, needs every grant it carries: `list:get` on a list needs
`lists:get_all` or the caller's own `list:get` on it, `list:manage` likewise with
`lists:manage_all` (services.roles.check_lists_within).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import LIST_PERMISSIONS, MailingList, Role, RoleList
from stmails.services import roles
from stmails.services.errors import Conflict, InvalidInput
from stmails.services.roles import OPERATOR, Actor

# What a list role grants: list id -> its list permissions.
Grants = Mapping[int, Iterable[str]]


def list_roles(session: Session) -> Sequence[Role]:
    """Every list role, by id."""
    return session.scalars(select(Role).where(Role.type == "list").order_by(Role.id)).all()


def get(session: Session, role_id: int) -> Role:
    """The list role `role_id`; NotFound otherwise."""
    return roles.get(session, role_id, "list")


def check_grants(session: Session, grants: Grants) -> dict[int, list[str]]:
    """The grants, checked: known list permissions (deduplicated, sorted) on lists that exist;
    lists granted nothing are left out. InvalidInput naming what is wrong."""
    checked: dict[int, list[str]] = {}
    for list_id, permissions in grants.items():
        wanted = sorted(set(permissions))
        unknown = [p for p in wanted if p not in LIST_PERMISSIONS]
        if unknown:
            raise InvalidInput("lists", f"unknown list permission {unknown[0]!r}")
        if wanted:
            checked[list_id] = wanted
    found = set(session.scalars(select(MailingList.id).where(MailingList.id.in_(list(checked)))))
    missing = sorted(set(checked) - found)
    if missing:
        raise InvalidInput("lists", f"no list {missing[0]}")
    return checked


def _split(grants: Mapping[int, Sequence[str]]) -> tuple[frozenset[int], frozenset[int]]:
    get_ids = frozenset(i for i, p in grants.items() if "list:get" in p)
    manage_ids = frozenset(i for i, p in grants.items() if "list:manage" in p)
    return get_ids, manage_ids


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > roles.ROLE_NAME_MAX:
        raise InvalidInput("name", f"must be 1-{roles.ROLE_NAME_MAX} characters")
    return cleaned


def _set_grants(role: Role, grants: Mapping[int, list[str]]) -> None:
    role.lists = [RoleList(list_id=i, permissions=p) for i, p in sorted(grants.items())]


def _flush(session: Session, role: Role) -> None:
    try:
        with session.begin_nested():
            session.add(role)
            session.flush()
    except IntegrityError:
        raise Conflict("name", f"list role {role.name!r} exists") from None


def create(session: Session, name: str, grants: Grants, *, actor: Actor = OPERATOR) -> Role:
    """A new list role granting `grants`; InvalidInput for a bad name, permission or list,
    Conflict for a taken name, Forbidden for a grant `actor` does not hold."""
    checked = check_grants(session, grants)
    roles.check_lists_within(actor, *_split(checked), "grant")
    role = Role(name=_check_name(name), type="list", permissions=[])
    _set_grants(role, checked)
    _flush(session, role)
    return role


def update(
    session: Session,
    role: Role,
    *,
    name: str | None,
    grants: Grants | None,
    actor: Actor = OPERATOR,
) -> Role:
    """Renames the list role and/or replaces its grants. Forbidden when it grants, or would
    grant, what `actor` does not hold (nobody widens a list role beyond their own rights)."""
    roles.check_lists_within(
        actor, *roles.list_grants(role), f"change list role {role.name!r}, which grants"
    )
    if grants is not None:
        checked = check_grants(session, grants)
        roles.check_lists_within(actor, *_split(checked), "grant")
        # The old grants go first: the new rows reuse their (role, list) keys.
        role.lists = []
        session.flush()
        _set_grants(role, checked)
    if name is not None:
        role.name = _check_name(name)
    _flush(session, role)
    return role
