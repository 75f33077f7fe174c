"""Users and roles: `/admin/users` (admin and API users; an API user's token is shown once, on
the answer that made it) and `/admin/roles` (user roles with permission checkboxes, list roles
with per-list grants).

Every change goes through the services with the signed-in user as the `Actor`, so the rules of
the API hold here too: a user grants only what it holds, only a Super Admin grants Super Admin
or manages a Super Admin user, and the last enabled Super Admin stays. Changes clear the
process's remembered credential checks (`web.permissions.change_access`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from stmails.db.handles import Session
from stmails.db.models import LIST_PERMISSIONS, USER_STATUSES, Role, User
from stmails.services import accounts, list_roles, roles
from stmails.services import lists as list_service
from stmails.services import sessions as session_service
from stmails.services import users as user_service
from stmails.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from stmails.web.admin.forms import form_fields, text
from stmails.web.admin.pages import page, redirect, render_page
from stmails.web.body import run_db
from stmails.web.deps import Viewer
from stmails.web.i18n import _
from stmails.web.permissions import actor, change_access

router = APIRouter()
log = logging.getLogger(__name__)

USERS_PATH = "/admin/users"
ROLES_PATH = "/admin/roles"
# Lists offered in a list role's form (the first ones by id).
MAX_LISTS_SHOWN = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    name: str
    email: str
    type: str
    status: str
    role_id: int
    role: str
    list_role_id: int | None
    list_role: str
    last_login: str
    twofa: bool
    super_admin: bool


@dataclass(frozen=True, slots=True)
class RoleRow:
    id: int
    name: str
    type: str
    permissions: list[str]
    # list id -> its list permissions (list roles)
    grants: dict[int, list[str]]
    super_admin: bool


@dataclass(frozen=True, slots=True)
class Directory:
    """What the users and roles pages show: users, user roles, list roles, lists."""

    users: list[UserRow]
    user_roles: list[RoleRow]
    list_roles: list[RoleRow]
    lists: list[tuple[int, str]]


class Refused(Exception):
    """A change the services refused: the HTTP status and the sentence to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _user_row(user: User) -> UserRow:
    return UserRow(
        id=user.id,
        username=user.username,
        name=user.name or "",
        email=user.email or "",
        type=user.type,
        status=user.status,
        role_id=user.role_id,
        role=user.role.name,
        list_role_id=user.list_role_id,
        list_role=user.list_role.name if user.list_role is not None else "",
        last_login=user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "",
        twofa=bool(user.totp_secret),
        super_admin=roles.is_super_admin(user.role),
    )


def _role_row(role: Role) -> RoleRow:
    return RoleRow(
        id=role.id,
        name=role.name,
        type=role.type or "user",
        permissions=roles.listed_permissions(role) if role.type != "list" else [],
        grants={g.list_id: list(g.permissions or ()) for g in role.lists}
        if role.type == "list"
        else {},
        super_admin=roles.is_super_admin(role),
    )


def _directory(session: Session) -> Directory:
    return Directory(
        users=[_user_row(u) for u in user_service.list_users(session)],
        user_roles=[_role_row(r) for r in roles.list_roles(session)],
        list_roles=[_role_row(r) for r in list_roles.list_roles(session)],
        lists=list_service.first_names(session, limit=MAX_LISTS_SHOWN),
    )


def _refusal(exc: Exception) -> Refused:
    if isinstance(exc, Forbidden):
        return Refused(403, str(exc))
    if isinstance(exc, NotFound):
        return Refused(404, str(exc))
    if isinstance(exc, Conflict):
        return Refused(409, str(exc))
    return Refused(400, str(exc))


async def _change(request: Request, work: Callable[[Session], T]) -> T:
    """`work` in a write transaction as a change of access; a refusal becomes `Refused`."""
    try:
        return await change_access(request, work)
    except (InvalidInput, Conflict, Forbidden, NotFound) as exc:
        raise _refusal(exc) from None


def _role_of(session: Session, raw: str, kind: str, field: str) -> Role | None:
    """The role of type `kind` a form's select names ('' for none)."""
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidInput(field, "choose one of the offered roles")
    found = session.get(Role, int(raw))
    if found is None or (found.type or "user") != kind:
        raise InvalidInput(field, "choose one of the offered roles")
    return found


def _render_users(
    request: Request,
    viewer: Viewer,
    directory: Directory,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/users.html",
        viewer=viewer,
        section="users",
        title=_("Users"),
        status_code=status_code,
        error=error,
        values=values or {"type": "admin", "status": "enabled"},
        directory=directory,
        statuses=USER_STATUSES,
    )


@router.get(USERS_PATH, include_in_schema=False)
async def users_page(request: Request, viewer: Annotated[Viewer, page("users:get")]) -> Response:
    return _render_users(request, viewer, await run_db(request, _directory))


@router.post(USERS_PATH, include_in_schema=False)
async def create_user(
    request: Request, viewer: Annotated[Viewer, page("users:manage")]
) -> Response:
    form = await form_fields(request)
    values = {
        key: text(form, key, 1000).strip()
        for key in ("type", "username", "name", "email", "status", "role", "list_role")
    }
    password = text(form, "password", 1000)
    who = actor(viewer.principal)

    def work(session: Session) -> tuple[str, str | None]:
        role = _role_of(session, values["role"], "user", "user_role_id")
        if role is None:
            raise InvalidInput("user_role_id", "choose a role")
        list_role = _role_of(session, values["list_role"], "list", "list_role_id")
        status = values["status"] or "enabled"
        kind = values["type"] or "admin"
        if kind == "api":
            user, token = user_service.create_api_user(
                session,
                values["username"],
                role=role,
                list_role=list_role,
                status=status,
                actor=who,
            )
            accounts.update_profile(session, user, name=values["name"])
            return user.username, token
        if kind != "admin":
            raise InvalidInput("type", "choose admin or API user")
        made = user_service.create_admin(
            session,
            values["username"],
            password,
            role=role,
            list_role=list_role,
            status=status,
            actor=who,
        )
        accounts.update_profile(session, made, name=values["name"], email=values["email"])
        return made.username, None

    try:
        username, token = await _change(request, work)
    except Refused as exc:
        directory = await run_db(request, _directory)
        return _render_users(
            request, viewer, directory, error=exc.message, values=values, status_code=exc.status
        )
    log.info("admin %s created user %s", viewer.principal.username, username)
    if token is not None:
        # Shown on this answer only: the database keeps its hash.
        return render_page(
            request,
            "admin/user_token.html",
            viewer=viewer,
            section="users",
            title=_("API user created"),
            username=username,
            token=token,
            headers={"Cache-Control": "no-store"},
        )
    return redirect(
        request,
        USERS_PATH,
        flash=("success", _("User %(name)s created.") % {"name": username}),
    )


async def _user_or_none(request: Request, user_id: int) -> tuple[UserRow | None, Directory]:
    def work(session: Session) -> tuple[UserRow | None, Directory]:
        found = session.get(User, user_id)
        return (_user_row(found) if found is not None else None), _directory(session)

    return await run_db(request, work)


def _not_found(request: Request, viewer: Viewer, message: str) -> Response:
    return render_page(
        request,
        "error.html",
        viewer=viewer,
        section="users",
        title="404",
        status_code=404,
        message=message,
    )


def _render_user(
    request: Request,
    viewer: Viewer,
    user: UserRow,
    directory: Directory,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "admin/user.html",
        viewer=viewer,
        section="users",
        title=_("User %(name)s") % {"name": user.username},
        status_code=status_code,
        error=error,
        user=user,
        directory=directory,
        statuses=USER_STATUSES,
    )


@router.get(USERS_PATH + "/{user_id}", include_in_schema=False)
async def user_page(
    request: Request, viewer: Annotated[Viewer, page("users:get")], user_id: int
) -> Response:
    user, directory = await _user_or_none(request, user_id)
    if user is None:
        return _not_found(request, viewer, _("There is no user %(id)s.") % {"id": user_id})
    return _render_user(request, viewer, user, directory)


@router.post(USERS_PATH + "/{user_id}", include_in_schema=False)
async def update_user(
    request: Request, viewer: Annotated[Viewer, page("users:manage")], user_id: int
) -> Response:
    form = await form_fields(request)
    who = actor(viewer.principal)

    def work(session: Session) -> str:
        user = user_service.get(session, user_id)
        password = text(form, "password", 1000) or None
        updated = user_service.update_user(
            session,
            user,
            username=text(form, "username", 1000).strip() or None,
            password=password,
            status=text(form, "status", 100) or None,
            role=_role_of(session, text(form, "role", 20), "user", "user_role_id"),
            list_role=_role_of(session, text(form, "list_role", 20), "list", "list_role_id"),
            set_list_role=True,
            actor=who,
        )
        accounts.update_profile(
            session,
            updated,
            name=text(form, "name", 1000).strip(),
            email=text(form, "email", 1000).strip() if updated.type != "api" else None,
        )
        if password is not None or updated.status != "enabled":
            # A new password or a disabled account ends the user's browser sessions (but
            # not the one making the change).
            keep = viewer.session_token if updated.id == viewer.principal.user_id else None
            session_service.revoke_user(session, updated.id, keep=keep)
        return updated.username

    try:
        username = await _change(request, work)
    except Refused as exc:
        user, directory = await _user_or_none(request, user_id)
        if user is None:
            return _not_found(request, viewer, _("There is no user %(id)s.") % {"id": user_id})
        return _render_user(
            request, viewer, user, directory, error=exc.message, status_code=exc.status
        )
    log.info("admin %s changed user %s", viewer.principal.username, username)
    return redirect(
        request,
        f"{USERS_PATH}/{user_id}",
        flash=("success", _("User %(name)s saved.") % {"name": username}),
    )


@router.post(USERS_PATH + "/{user_id}/delete", include_in_schema=False)
async def delete_user(
    request: Request, viewer: Annotated[Viewer, page("users:manage")], user_id: int
) -> Response:
    who = actor(viewer.principal)

    def work(session: Session) -> str:
        user = user_service.get(session, user_id)
        username = user.username
        user_service.delete(session, user, actor=who)
        return username

    try:
        username = await _change(request, work)
    except Refused as exc:
        return redirect(request, f"{USERS_PATH}/{user_id}", flash=("error", exc.message))
    log.info("admin %s deleted user %s", viewer.principal.username, username)
    return redirect(
        request, USERS_PATH, flash=("success", _("User %(name)s deleted.") % {"name": username})
    )


# --- Roles -------------------------------------------------------------------------------


def _permission_groups(viewer: Viewer) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Each permission group with its permissions and whether the viewer may grant each."""
    held = viewer.principal.permissions
    return [
        (group, [(p, viewer.principal.super_admin or p in held) for p in permissions])
        for group, permissions in roles.PERMISSION_GROUPS.items()
    ]


def _render_roles(
    request: Request,
    viewer: Viewer,
    directory: Directory,
    *,
    error: str = "",
    status_code: int = 200,
    editing: RoleRow | None = None,
) -> Response:
    return render_page(
        request,
        "admin/roles.html" if editing is None else "admin/role.html",
        viewer=viewer,
        section="users",
        title=_("Roles") if editing is None else _("Role %(name)s") % {"name": editing.name},
        status_code=status_code,
        error=error,
        directory=directory,
        groups=_permission_groups(viewer),
        list_permissions=LIST_PERMISSIONS,
        role=editing,
    )


def _checked_permissions(form: FormData) -> list[str]:
    return [str(v)[:100] for v in form.getlist("permissions")][: len(roles.ALL_PERMISSIONS) + 1]


def _checked_grants(form: FormData) -> dict[int, list[str]]:
    grants: dict[int, list[str]] = {}
    for permission in LIST_PERMISSIONS:
        for raw in form.getlist(permission)[:MAX_LISTS_SHOWN]:
            if isinstance(raw, str) and raw.isdigit():
                grants.setdefault(int(raw), []).append(permission)
    return grants


@router.get(ROLES_PATH, include_in_schema=False)
async def roles_page(request: Request, viewer: Annotated[Viewer, page("roles:get")]) -> Response:
    return _render_roles(request, viewer, await run_db(request, _directory))


@router.post(ROLES_PATH, include_in_schema=False)
async def create_role(
    request: Request, viewer: Annotated[Viewer, page("roles:manage")]
) -> Response:
    form = await form_fields(request)
    who = actor(viewer.principal)
    name = text(form, "name", 1000)
    kind = text(form, "kind", 10)

    def work(session: Session) -> str:
        if kind == "list":
            return list_roles.create(session, name, _checked_grants(form), actor=who).name
        return roles.create(session, name, _checked_permissions(form), actor=who).name

    try:
        made = await _change(request, work)
    except Refused as exc:
        directory = await run_db(request, _directory)
        return _render_roles(request, viewer, directory, error=exc.message, status_code=exc.status)
    log.info("admin %s created role %s", viewer.principal.username, made)
    return redirect(
        request, ROLES_PATH, flash=("success", _("Role %(name)s created.") % {"name": made})
    )


async def _role_or_none(request: Request, role_id: int) -> tuple[RoleRow | None, Directory]:
    def work(session: Session) -> tuple[RoleRow | None, Directory]:
        found = session.get(Role, role_id)
        return (_role_row(found) if found is not None else None), _directory(session)

    return await run_db(request, work)


@router.get(ROLES_PATH + "/{role_id}", include_in_schema=False)
async def role_page(
    request: Request, viewer: Annotated[Viewer, page("roles:get")], role_id: int
) -> Response:
    role, directory = await _role_or_none(request, role_id)
    if role is None:
        return _not_found(request, viewer, _("There is no role %(id)s.") % {"id": role_id})
    return _render_roles(request, viewer, directory, editing=role)


@router.post(ROLES_PATH + "/{role_id}", include_in_schema=False)
async def update_role(
    request: Request, viewer: Annotated[Viewer, page("roles:manage")], role_id: int
) -> Response:
    form = await form_fields(request)
    who = actor(viewer.principal)

    def work(session: Session) -> str:
        role = roles.get(session, role_id)
        name = text(form, "name", 1000)
        if role.type == "list":
            return list_roles.update(
                session, role, name=name, grants=_checked_grants(form), actor=who
            ).name
        return roles.update(
            session, role, name=name, permissions=_checked_permissions(form), actor=who
        ).name

    try:
        saved = await _change(request, work)
    except Refused as exc:
        role, directory = await _role_or_none(request, role_id)
        if role is None:
            return _not_found(request, viewer, _("There is no role %(id)s.") % {"id": role_id})
        return _render_roles(
            request, viewer, directory, error=exc.message, status_code=exc.status, editing=role
        )
    log.info("admin %s changed role %s", viewer.principal.username, saved)
    return redirect(
        request,
        f"{ROLES_PATH}/{role_id}",
        flash=("success", _("Role %(name)s saved.") % {"name": saved}),
    )


@router.post(ROLES_PATH + "/{role_id}/delete", include_in_schema=False)
async def delete_role(
    request: Request, viewer: Annotated[Viewer, page("roles:manage")], role_id: int
) -> Response:
    who = actor(viewer.principal)

    def work(session: Session) -> str:
        role = roles.get(session, role_id)
        name = role.name
        roles.delete(session, role, actor=who)
        return name

    try:
        name = await _change(request, work)
    except Refused as exc:
        return redirect(request, f"{ROLES_PATH}/{role_id}", flash=("error", exc.message))
    log.info("admin %s deleted role %s", viewer.principal.username, name)
    return redirect(
        request, ROLES_PATH, flash=("success", _("Role %(name)s deleted.") % {"name": name})
    )
