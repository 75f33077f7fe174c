"""Authorization: each route declares the permissions it needs, checked in one place.

A route lists `require_permission("bounces:get")` among its dependencies. The check runs after
authentication (`require_user`, 401 without valid credentials) and is a set lookup on the
cached principal, so it costs no database query: a caller whose role lacks the permission gets
403 `{"message": "permission denied: <permission> required"}`. A permitted caller's body that is
not JSON on a JSON route is then refused with 415 (web.body.check_json_body).

The principal's permissions are fixed when its credentials are checked and remembered by the
auth cache (web.deps.AuthCache). A change of users or roles through the API clears that cache
in the process that made it; other server processes see the change once their entries expire
(AUTH_CACHE_SECONDS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from stmails.db.handles import Session
from stmails.services.roles import ALL_PERMISSIONS, Actor
from stmails.web.body import check_json_body, run_db
from stmails.web.deps import Principal, app_state, require_user
from stmails.web.errors import ApiError

T = TypeVar("T")

# The attribute that names a permission dependency's permissions (for docs and tests).
DECLARED = "stmails_permissions"


def permission_denied(permission: str) -> ApiError:
    """403 naming the missing permission."""
    return ApiError(403, f"permission denied: {permission} required")


def check_permission(principal: Principal, *permissions: str) -> Principal:
    """`principal` when it holds every one of `permissions`; 403 naming the first it lacks."""
    for permission in permissions:
        if permission not in principal.permissions:
            raise permission_denied(permission)
    return principal


def actor(principal: Principal) -> Actor:
    """The caller as the services' `Actor` for changes to users and roles (what it may grant)."""
    return Actor(
        principal.permissions,
        principal.super_admin,
        principal.user_id,
        principal.list_get,
        principal.list_manage,
    )


# A route parameter: the authenticated caller.
Caller = Annotated[Principal, Depends(require_user)]


def _known(permissions: tuple[str, ...]) -> tuple[str, ...]:
    # A misspelt permission would lock everybody but nobody out; fail when the route is made.
    unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
    if unknown or not permissions:
        raise ValueError(f"unknown or no permissions: {unknown}")
    return permissions


def require_permission(*permissions: str) -> Any:
    """A route dependency (`dependencies=[require_permission(...)]`): the authenticated caller
    must hold every one of `permissions`."""
    needed = _known(permissions)

    async def permitted(
        request: Request, principal: Annotated[Principal, Depends(require_user)]
    ) -> Principal:
        check_permission(principal, *needed)
        # After the caller is known, before the route reads anything: JSON bodies only.
        check_json_body(request)
        return principal

    setattr(permitted, DECLARED, needed)
    return Depends(permitted)


def require_any(*permissions: str) -> Any:
    """A route dependency: the authenticated caller must hold at least one of `permissions`
    (listmonk's `campaigns:get_all` or `campaigns:get`); 403 names the first."""
    needed = _known(permissions)

    async def permitted(
        request: Request, principal: Annotated[Principal, Depends(require_user)]
    ) -> Principal:
        if not any(p in principal.permissions for p in needed):
            raise permission_denied(needed[0])
        check_json_body(request)
        return principal

    setattr(permitted, DECLARED, needed)
    return Depends(permitted)


def require_permission_with(parameter: str, permission: str) -> Any:
    """A route dependency: `permission` is needed too when the query parameter `parameter` is
    given and not blank (listmonk's `query` needs subscribers:sql_query)."""
    needed = _known((permission,))

    async def permitted(
        request: Request, principal: Annotated[Principal, Depends(require_user)]
    ) -> Principal:
        if request.query_params.get(parameter, "").strip():
            check_permission(principal, *needed)
        check_json_body(request)
        return principal

    setattr(permitted, DECLARED, needed)
    return Depends(permitted)


async def change_access(request: Request, work: Callable[[Session], T]) -> T:
    """Runs `work` in a write transaction (web.body.run_db) that changes users or roles, then
    drops this process's remembered credential checks, so that the change applies at once."""
    try:
        return await run_db(request, work, write=True)
    finally:
        app_state(request).auth_cache.clear()
