"""listmonk's user API: `/api/users` (admin and API users), plus stmails' shortcuts
`POST /api/users/api` and `PUT /api/users/{id}/role`.

listmonk's forms: `POST /api/users` with `type: api` makes an API user, and `PUT /api/users/{id}`
changes any field, the roles included. Users have listmonk's `name` and `email` (the address
password-reset mail goes to; API users have none). Secrets never come back except once: making
an API user returns the generated token as listmonk does, in the user's `password` field.
listmonk's login type is called `user`; stmails calls it `admin` and accepts `user` on input.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import Session
from stmails.db.models import Role, User
from stmails.services import accounts
from stmails.services import users as user_service
from stmails.web.api.roles import list_names, list_role_json, role_json
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, query_ids, run_db, text_field
from stmails.web.deps import require_user
from stmails.web.errors import bad_request
from stmails.web.permissions import Caller, actor, change_access, require_permission
from stmails.web.responses import JSONResponse, Repeated, data, timestamp

router = APIRouter(tags=["users"], dependencies=[Depends(require_user)])

# listmonk's name of a password-login user, and ours.
USER_TYPES = {"user": "admin", "admin": "admin", "api": "api"}


def user_json(
    user: User, token: str | None = None, names: dict[int, str] | None = None
) -> dict[str, Any]:
    """A user as listmonk returns it, with its user role and list role (`names`: the names of
    the list role's lists)."""
    body: dict[str, Any] = {
        "id": user.id,
        "created_at": timestamp(user.created_at),
        "username": user.username,
        "name": user.name or user.username,
        "email": (user.email or None) if user.type != "api" else None,
        "type": user.type,
        "status": user.status,
        "password_login": user.type == "admin",
        "loggedin_at": timestamp(user.last_login),
        "twofa_type": "totp" if user.totp_secret else "none",
        "user_role_id": user.role_id,
        "user_role": role_json(user.role),
        "list_role_id": user.list_role_id,
        "list_role": (
            list_role_json(user.list_role, names or {}) if user.list_role is not None else None
        ),
    }
    if token is not None:
        body["password"] = token
    return body


def _role_id(body: dict[str, Any], required: bool, field: str = "user_role_id") -> int | None:
    value = body.get(field)
    if value is None:
        if required:
            raise bad_request(f"{field}: required")
        return None
    # listmonk's forms send a list_role_id of 0 for "no list role".
    if field == "list_role_id" and value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"{field}: must be a positive integer id")
    return value


def _role(
    session: Session, role_id: int | None, kind: str = "user", field: str = "user_role_id"
) -> Role | None:
    """The role of type `kind` that `role_id` names; an unknown id is the caller's mistake
    (400, not 404)."""
    if role_id is None:
        return None
    found = session.get(Role, role_id)
    if found is None or found.type != kind:
        raise bad_request(f"{field}: no {kind} role {role_id}")
    return found


def _json(session: Session, user: User, token: str | None = None) -> dict[str, Any]:
    names = list_names(session, [user.list_role]) if user.list_role is not None else {}
    return user_json(user, token, names)


@router.get("/users", summary="List users", dependencies=[require_permission("users:get")])
async def list_users(request: Request) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        return [_json(session, u) for u in user_service.list_users(session)]

    return data(await run_db(request, work))


@router.get(
    "/users/{user_id}", summary="Get one user", dependencies=[require_permission("users:get")]
)
async def get_user(request: Request, user_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _json(s, user_service.get(s, user_id))))


async def _create(
    request: Request, caller: Caller, body: dict[str, Any], user_type: str
) -> JSONResponse:
    username = text_field(body, "username", 1000)
    if not username:
        raise bad_request("username: required")
    role_id = _role_id(body, required=True)
    list_role_id = _role_id(body, False, "list_role_id")
    status = text_field(body, "status", 100) or "enabled"
    password = text_field(body, "password", 1000)
    if user_type == "admin" and not password:
        raise bad_request("password: required for a user that logs in with a password")
    name = text_field(body, "name", 1000)
    email = text_field(body, "email", 1000)

    def work(session: Session) -> dict[str, Any]:
        role = _role(session, role_id)
        list_role = _role(session, list_role_id, "list", "list_role_id")
        if user_type == "api":
            user, token = user_service.create_api_user(
                session,
                username,
                role=role,
                list_role=list_role,
                status=status,
                actor=actor(caller),
            )
            accounts.update_profile(session, user, name=name)
            return _json(session, user, token)
        made = user_service.create_admin(
            session,
            username,
            password or "",
            role=role,
            list_role=list_role,
            status=status,
            actor=actor(caller),
        )
        accounts.update_profile(session, made, name=name, email=email)
        return _json(session, made)

    return data(await run_db(request, work, write=True))


@router.post(
    "/users",
    summary="Create a user (type user/admin with a password, or api)",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("users:manage")],
)
async def create_user(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's `POST /api/users`: username, password, type, status, user_role_id."""
    body = await json_object(request)
    user_type = USER_TYPES.get(text_field(body, "type", 100) or "user")
    if user_type is None:
        raise bad_request("type: must be user (or admin) or api")
    return await _create(request, caller, body, user_type)


@router.post(
    "/users/api",
    summary="Create an API user; its token is returned once, as `password`",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("users:manage")],
)
async def create_api_user(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's `POST /api/users/api`: username, status, user_role_id."""
    return await _create(request, caller, await json_object(request), "api")


@router.put(
    "/users/{user_id}",
    summary="Update a user",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("users:manage")],
)
async def update_user(request: Request, caller: Caller, user_id: int) -> JSONResponse:
    """Changes the fields given: username, name, email (password users), password (password
    users), status, user_role_id.

    Empty strings leave their field unchanged (listmonk's clients send the whole form).
    """
    body = await json_object(request)
    username = text_field(body, "username", 1000)
    password = text_field(body, "password", 1000) or None
    status = text_field(body, "status", 100) or None
    role_id = _role_id(body, required=False)
    # listmonk: a list_role_id given (null or 0 for none) sets it; absent keeps it.
    set_list_role = "list_role_id" in body
    list_role_id = _role_id(body, False, "list_role_id")
    name = text_field(body, "name", 1000) or None
    email = text_field(body, "email", 1000) or None

    def work(session: Session) -> dict[str, Any]:
        user = user_service.get(session, user_id)
        updated = user_service.update_user(
            session,
            user,
            username=username or None,
            password=password,
            status=status,
            role=_role(session, role_id),
            list_role=_role(session, list_role_id, "list", "list_role_id"),
            set_list_role=set_list_role,
            actor=actor(caller),
        )
        # API users have no address (listmonk ignores one sent for them).
        accounts.update_profile(
            session, updated, name=name, email=email if updated.type != "api" else None
        )
        return _json(session, updated)

    return data(await change_access(request, work))


@router.put(
    "/users/{user_id}/role",
    summary="Give a user another role",
    openapi_extra=JSON_BODY,
    dependencies=[require_permission("users:manage")],
)
async def set_role(request: Request, caller: Caller, user_id: int) -> JSONResponse:
    """`{"user_role_id": N}`, and `list_role_id` (null for none) when given."""
    body = await json_object(request)
    role_id = _role_id(body, required=True)
    set_list_role = "list_role_id" in body
    list_role_id = _role_id(body, False, "list_role_id")

    def work(session: Session) -> dict[str, Any]:
        user = user_service.get(session, user_id)
        changed = user_service.update_user(
            session,
            user,
            role=_role(session, role_id),
            list_role=_role(session, list_role_id, "list", "list_role_id"),
            set_list_role=set_list_role,
            actor=actor(caller),
        )
        return _json(session, changed)

    return data(await change_access(request, work))


@router.delete(
    "/users",
    summary="Delete users by id (?id=1&id=2)",
    dependencies=[require_permission("users:manage")],
)
async def delete_users(request: Request, caller: Caller, id: Repeated = None) -> JSONResponse:
    """listmonk's bulk delete: every user named, or none (the checks of a single delete apply
    to each, and one refusal keeps them all)."""
    ids = query_ids(id or [], "id")
    if not ids:
        raise bad_request("id: at least one user id is required")

    def work(session: Session) -> bool:
        for user_id in dict.fromkeys(ids):
            user_service.delete(session, user_service.get(session, user_id), actor=actor(caller))
        return True

    return data(await change_access(request, work))


@router.delete(
    "/users/{user_id}", summary="Delete a user", dependencies=[require_permission("users:manage")]
)
async def delete_user(request: Request, caller: Caller, user_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        user_service.delete(session, user_service.get(session, user_id), actor=actor(caller))
        return True

    return data(await change_access(request, work))
