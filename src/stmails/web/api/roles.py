"""listmonk's user-role API: `GET/POST /api/roles/users`, `PUT /api/roles/users/{id}`,
`DELETE /api/roles/{id}`. listmonk's list roles (`/api/roles/lists`) are not supported."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from stmails.db.models import Role
from stmails.services import roles as role_service
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db, strings_field, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import Caller, actor, change_access, require_permission
from stmails.web.responses import JSONResponse, data, timestamp

router = APIRouter(tags=["users"], dependencies=[Depends(require_user)])


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
        role = role_service.get(session, role_id)
        changed = role_service.update(
            session, role, name=name, permissions=permissions, actor=actor(caller)
        )
        return role_json(changed)

    return data(await change_access(request, work))


@router.delete(
    "/roles/{role_id}",
    summary="Delete a user role (not Super Admin, not while a user has it)",
    dependencies=[require_permission("roles:manage")],
)
async def delete_role(request: Request, caller: Caller, role_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        role_service.delete(session, role_service.get(session, role_id), actor=actor(caller))
        return True

    return data(await change_access(request, work))
