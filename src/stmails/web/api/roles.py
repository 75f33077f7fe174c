"""listmonk's role API: user roles (`GET/POST /api/roles/users`, `PUT /api/roles/users/{id}`),
list roles (`GET/POST /api/roles/lists`, `PUT /api/roles/lists/{id}`) and `DELETE
/api/roles/{id}` for either.

A list role is `{"name": ..., "lists": [{"id": <list id>, "permissions": ["list:get",
"list:manage"]}]}` (services.list_roles); what it opens is web.list_scope's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import Role
from stmails.services import list_roles as list_role_service
from stmails.services import lists as list_service
from stmails.services import roles as role_service
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db, strings_field, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import Caller, actor, change_access, require_permission
from stmails.web.responses import JSONResponse, data, timestamp

router = APIRouter(tags=["users"], dependencies=[Depends(require_user)])


def list_role_json(role: Role, names: dict[int, str]) -> dict[str, Any]:
    """A list role as listmonk returns it: its lists with their names and grants."""
    return {
        "id": role.id,
        "created_at": timestamp(role.created_at),
        "updated_at": timestamp(role.updated_at),
        "name": role.name,
        "lists": [
            {"id": g.list_id, "name": names.get(g.list_id, ""), "permissions": g.permissions}
            for g in role.lists
        ],
    }


def list_names(session: Session, roles: list[Role]) -> dict[int, str]:
    """The names of the lists `roles` grant access to."""
    return list_service.names_of(session, {g.list_id for role in roles for g in role.lists})


def _grants(body: dict[str, Any]) -> dict[int, list[str]] | None:
    """listmonk's `lists` of a list role body: `[{"id": N, "permissions": [...]}]`."""
    if "lists" not in body:
        return None
    value = body.get("lists") or []
    if not isinstance(value, list):
        raise bad_request("lists: must be an array of {id, permissions}")
    grants: dict[int, list[str]] = {}
    for item in value:
        list_id = item.get("id") if isinstance(item, dict) else None
        permissions = item.get("permissions") if isinstance(item, dict) else None
        if (
            not isinstance(list_id, int)
            or isinstance(list_id, bool)
            or list_id < 1
            or not isinstance(permissions, list)
            or not all(isinstance(p, str) for p in permissions)
        ):
            raise bad_request('lists: each must be {"id": <list id>, "permissions": [...]}')
        grants[list_id] = [p for p in permissions if p]
    return grants


def role_json(role: Role) -> dict[str, Any]:
    """A user role as listmonk returns it (Super Admin lists every permission)."""
    return {
        "id": role.id,
        "created_at": timestamp(role.created_at),
        "updated_at": timestamp(role.updated_at),
        "type": "user",
        "name": role.name,
        "permissions": role_service.listed_permissions(role),
    }


@router.get(
    "/roles/users", summary="List user roles", dependencies=[require_permission("roles:get")]
)
async def list_roles(request: Request) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        found = role_service.list_roles(session)
        return [role_json(r) for r in found]

    # Listing may make the Super Admin role on a database that lacks it.
    return data(await run_db(request, work, write=True))


@router.post(
    "/roles/users",
    summary="Create a user role",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("roles:manage")],
)
async def create_role(request: Request, caller: Caller) -> JSONResponse:
    """`{"name": ..., "permissions": [...]}`; an unknown permission is a 400 naming it."""
    body = await json_object(request)
    name = text_field(body, "name", 1000)
    if not name:
        raise bad_request("name: required")
    permissions = strings_field(body, "permissions") or []

    def work(session: Session) -> dict[str, Any]:
        return role_json(role_service.create(session, name, permissions, actor=actor(caller)))

    return data(await run_db(request, work, write=True))


@router.put(
    "/roles/users/{role_id}",
    summary="Update a user role",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("roles:manage")],
)
async def update_role(request: Request, caller: Caller, role_id: int) -> JSONResponse:
    """Renames the role and/or replaces its permissions; Super Admin cannot be changed."""
    body = await json_object(request)
    name = text_field(body, "name", 1000)
    permissions = strings_field(body, "permissions")

    def work(session: Session) -> dict[str, Any]:
        role = role_service.get(session, role_id, "user")
        changed = role_service.update(
            session, role, name=name, permissions=permissions, actor=actor(caller)
        )
        return role_json(changed)

    return data(await change_access(request, work))


@router.get(
    "/roles/lists", summary="List list roles", dependencies=[require_permission("roles:get")]
)
async def list_list_roles(request: Request) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        found = list(list_role_service.list_roles(session))
        names = list_names(session, found)
        return [list_role_json(r, names) for r in found]

    return data(await run_db(request, work))


@router.post(
    "/roles/lists",
    summary="Create a list role",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("roles:manage")],
)
async def create_list_role(request: Request, caller: Caller) -> JSONResponse:
    """`{"name": ..., "lists": [{"id": 1, "permissions": ["list:get", "list:manage"]}]}`;
    every grant must be one the caller holds."""
    body = await json_object(request)
    name = text_field(body, "name", 1000)
    if not name:
        raise bad_request("name: required")
    grants = _grants(body) or {}

    def work(session: Session) -> dict[str, Any]:
        made = list_role_service.create(session, name, grants, actor=actor(caller))
        return list_role_json(made, list_names(session, [made]))

    return data(await run_db(request, work, write=True))


@router.put(
    "/roles/lists/{role_id}",
    summary="Update a list role",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("roles:manage")],
)
async def update_list_role(request: Request, caller: Caller, role_id: int) -> JSONResponse:
    """Renames the list role and/or replaces its lists (`lists`, as on creation)."""
    body = await json_object(request)
    name = text_field(body, "name", 1000)
    grants = _grants(body)

    def work(session: Session) -> dict[str, Any]:
        role = list_role_service.get(session, role_id)
        changed = list_role_service.update(
            session, role, name=name or None, grants=grants, actor=actor(caller)
        )
        return list_role_json(changed, list_names(session, [changed]))

    return data(await change_access(request, work))


@router.delete(
    "/roles/{role_id}",
    summary="Delete a user or list role (not Super Admin, not while a user has it)",
    dependencies=[require_permission("roles:manage")],
)
async def delete_role(request: Request, caller: Caller, role_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        role_service.delete(session, role_service.get(session, role_id), actor=actor(caller))
        return True

    return data(await change_access(request, work))
