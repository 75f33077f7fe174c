"""listmonk's subscriber API: `/api/subscribers` and its sub-resources.

Finding subscribers takes listmonk's two forms everywhere (the listing and the `/query/*` bulk
actions): `search`, part of the name or address in any case (no extra permission), and
`query`, an SQL-like expression (subscribers:sql_query; services.subscriber_query parses it,
never pastes it). `list_ids` (`list_id` on the listing) narrow to subscribers of those lists,
with `subscription_status` on them; a bulk action with `all: true` acts on every subscriber
(of those lists), whatever `search` and `query` say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request

from stmails.db.handles import DataError, ProgrammingError, Session
from stmails.db.models import SUBSCRIPTION_STATUSES
from stmails.services import bounces as bounce_service
from stmails.services import intake, subscriber_pages
from stmails.services import subscribers as subscriber_service
from stmails.services.bounces import BounceFilter
from stmails.services.hygiene import risk
from stmails.services.subscriber_query import query_deadline
from stmails.web import serialize
from stmails.web.body import (
    act_on_one,
    bool_field,
    ids_field,
    json_object,
    object_field,
    query_ids,
    run_db,
    text_field,
)
from stmails.web.deps import Principal, require_user
from stmails.web.errors import bad_request
from stmails.web.list_scope import (
    check_lists,
    check_subscribers,
    check_target_lists,
    guard,
    manageable,
    mask_lists,
    scoped,
    subscriber_lists,
)
from stmails.web.permissions import (
    Caller,
    check_permission,
    permission_denied,
    require_any,
    require_permission,
    require_permission_with,
)
from stmails.web.responses import JSONResponse, ListingParams, Repeated, data

router = APIRouter(tags=["subscribers"], dependencies=[Depends(require_user), guard])

JSON_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
MEMBERSHIP_ACTIONS = ("add", "remove", "unsubscribe")


def _one(session: Session, subscriber_id: int, caller: Principal) -> dict[str, Any]:
    found = subscriber_service.get(session, subscriber_id)
    body = serialize.subscriber(
        found,
        subscriber_service.subscriptions(session, [found.id])[found.id],
        risk.hygiene_of(session, [found.id]).get(found.id),
    )
    return mask_lists(body, caller)


@router.get(
    "/subscribers",
    dependencies=[
        require_any("subscribers:get_all", "subscribers:get"),
        require_permission_with("query", "subscribers:sql_query"),
    ],
    summary="Query and list subscribers",
)
async def list_subscribers(
    request: Request,
    caller: Caller,
    listing: ListingParams,
    query: str = "",
    search: str = "",
    list_id: Repeated = None,
    subscription_status: str = "",
) -> JSONResponse:
    """listmonk's `GET /api/subscribers`: `search` (name or address), `query` (an SQL-like
    expression, parsed safely), `list_id` and `subscription_status`."""
    paging = listing.paging
    order_by = listing.order_by or "id"
    direction = listing.order or "asc"
    list_ids = query_ids(list_id or [], "list_id")
    _check_subscription_status(subscription_status)
    every = "subscribers:get_all" in caller.permissions
    # subscribers:get lists only the subscribers of the caller's lists (a list role's).
    if not every and not scoped(caller):
        raise permission_denied("subscribers:get_all")
    allowed = subscriber_lists(caller)
    check_lists(caller, list_ids, allowed, "list:get")

    # Without a list_id, a list-scoped caller relying on subscribers:get sees its lists only.
    within = None if every else allowed

    def work(session: Session) -> dict[str, Any]:
        try:
            with query_deadline(session):
                found = subscriber_pages.api_page(
                    session,
                    query=query,
                    within=within,
                    list_ids=list_ids,
                    subscription_status=subscription_status or None,
                    search=search,
                    order_by=order_by,
                    order=direction,
                    page=paging.page,
                    per_page=paging.per_page,
                )
        except (DataError, ProgrammingError) as exc:
            # The expression parsed, but the database could not evaluate it for these rows
            # (e.g. a cast of text that is not a number on PostgreSQL).
            message = f"query: the database could not evaluate it ({_first_line(exc)})"
            raise bad_request(message) from None
        rows = found.results
        lists = subscriber_service.subscriptions(session, [row.id for row in rows])
        hygiene = risk.hygiene_of(session, [row.id for row in rows])
        results = [
            mask_lists(serialize.subscriber(row, lists[row.id], hygiene.get(row.id)), caller)
            for row in rows
        ]
        return paging.envelope(results, found.total, query, search.strip())

    return data(await run_db(request, work))


def _check_subscription_status(value: str | None) -> None:
    if value and value not in SUBSCRIPTION_STATUSES:
        raise bad_request(f"subscription_status: one of {', '.join(SUBSCRIPTION_STATUSES)}")


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return text[0][:200] if text else "error"


@router.get(
    "/subscribers/{subscriber_id}",
    dependencies=[require_permission("subscribers:get")],
    summary="Get one subscriber",
)
async def get_subscriber(request: Request, caller: Caller, subscriber_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, subscriber_id, caller)))


@router.post(
    "/subscribers",
    dependencies=[require_permission("subscribers:manage")],
    summary="Create a subscriber",
    openapi_extra=JSON_BODY,
)
async def create_subscriber(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's `POST /api/subscribers`: email, name, status, lists, attribs, preconfirm.

    The address is verified on the way in as `verify.on_subscribe` says (services.intake).
    """
    body = await json_object(request)

    email = text_field(body, "email", 320)
    if not email:
        raise bad_request("email: required")
    name = text_field(body, "name", 500) or ""
    status = text_field(body, "status") or "enabled"
    attribs = object_field(body, "attribs")
    list_ids = ids_field(body, "lists") or []
    preconfirm = bool_field(body, "preconfirm_subscriptions")
    check_target_lists(caller, list_ids)

    def work(session: Session) -> dict[str, Any]:
        created = subscriber_service.create(
            session,
            email=email,
            name=name,
            attribs=intake.screen(intake.current(session), email, attribs),
            status=status,
            list_ids=list_ids,
            preconfirm=preconfirm,
        )
        return _one(session, created.id, caller)

    return data(await run_db(request, work, write=True))


@router.put(
    "/subscribers/lists",
    dependencies=[require_permission("subscribers:manage")],
    summary="Add, remove or unsubscribe subscribers on lists",
)
async def manage_lists(request: Request, caller: Caller) -> JSONResponse:
    """listmonk's `PUT /api/subscribers/lists`: ids, action, target_list_ids, status."""
    body = await json_object(request)
    ids = ids_field(body, "ids") or []
    if not ids:
        raise bad_request("ids: at least one subscriber id is required")

    def chosen(session: Session) -> Sequence[int]:
        check_subscribers(session, caller, ids)
        return ids

    await _change_lists(request, caller, body, chosen)
    return data(True)


async def _change_lists(
    request: Request,
    caller: Principal,
    body: dict[str, Any],
    select_ids: Callable[[Session], Sequence[int]],
) -> None:
    """Applies a membership change to the subscribers `select_ids` picks, in one transaction."""
    action = body.get("action")
    if action not in MEMBERSHIP_ACTIONS:
        raise bad_request(f"action: one of {', '.join(MEMBERSHIP_ACTIONS)}")
    list_ids = ids_field(body, "target_list_ids") or []
    if not list_ids:
        raise bad_request("target_list_ids: at least one list id is required")
    check_target_lists(caller, list_ids)
    status = text_field(body, "status")
    if action == "add" and status not in SUBSCRIPTION_STATUSES:
        raise bad_request(f"status: one of {', '.join(SUBSCRIPTION_STATUSES)} (required for add)")

    def work(session: Session) -> None:
        ids = list(select_ids(session))
        if ids:
            subscriber_service.manage_lists(session, ids, list_ids, action, status=status)

    await run_db(request, work, write=True)


@router.put(
    "/subscribers/blocklist",
    dependencies=[require_permission("subscribers:manage")],
    summary="Blocklist several subscribers",
)
async def blocklist_many(request: Request, caller: Caller) -> JSONResponse:
    body = await json_object(request)
    ids = ids_field(body, "ids") or []
    if not ids:
        raise bad_request("ids: at least one subscriber id is required")

    def work(session: Session) -> None:
        check_subscribers(session, caller, ids)
        subscriber_service.blocklist(session, ids)

    await run_db(request, work, write=True)
    return data(True)


# The query-based bulk actions select and act in one write transaction, so the subscribers
# acted on are exactly those the query matched.
@router.put(
    "/subscribers/query/blocklist",
    dependencies=[require_permission("subscribers:manage")],
    summary="Blocklist the subscribers a search or query matches",
)
async def blocklist_query(request: Request, caller: Caller) -> JSONResponse:
    selection = _Selection.of(await json_object(request), caller, need_filter=True)

    def work(session: Session) -> None:
        subscriber_service.blocklist(session, selection.ids(session))

    await run_db(request, work, write=True)
    return data(True)


@router.post(
    "/subscribers/query/delete",
    dependencies=[require_permission("subscribers:manage")],
    summary="Delete the subscribers a search or query matches",
)
async def delete_query(request: Request, caller: Caller) -> JSONResponse:
    selection = _Selection.of(await json_object(request), caller, need_filter=True)

    def work(session: Session) -> None:
        subscriber_service.delete_subscribers(session, selection.ids(session))

    await run_db(request, work, write=True)
    return data(True)


@router.put(
    "/subscribers/query/lists",
    dependencies=[require_permission("subscribers:manage")],
    summary="Change list memberships of the subscribers a search or query matches",
)
async def lists_query(request: Request, caller: Caller) -> JSONResponse:
    body = await json_object(request)
    selection = _Selection.of(body, caller, need_filter=False)
    await _change_lists(request, caller, body, selection.ids)
    return data(True)


@dataclass(frozen=True, slots=True)
class _Selection:
    """The subscribers a bulk body selects: listmonk's `search`, `query`, `list_ids`,
    `subscription_status` and `all`."""

    search: str
    query: str
    list_ids: list[int]
    subscription_status: str | None
    # A list-scoped caller's lists: the selection never goes beyond them.
    within: frozenset[int] | None

    @classmethod
    def of(cls, body: dict[str, Any], caller: Principal, *, need_filter: bool) -> _Selection:
        """The selection of `body`; 400 for a bad field, or (with `need_filter`) when neither
        `search`, `query` nor `all` says whom; 403 for a `query` without
        subscribers:sql_query."""
        everything = bool_field(body, "all")
        # listmonk: `all` acts on everybody (of `list_ids`) whatever the search or query.
        search = "" if everything else (text_field(body, "search", 1000) or "").strip()
        query = "" if everything else (text_field(body, "query") or "").strip()
        if need_filter and not (everything or search or query):
            raise bad_request("query: give a search, a query, or all: true")
        if query:
            check_permission(caller, "subscribers:sql_query")
        status = text_field(body, "subscription_status", 100) or None
        _check_subscription_status(status)
        list_ids = ids_field(body, "list_ids") or []
        within = subscriber_lists(caller)
        check_lists(caller, list_ids, within, "list:get")
        return cls(search, query, list_ids, status, within)

    def ids(self, session: Session) -> list[int]:
        """Ids of the subscribers selected, read in the caller's transaction."""
        with query_deadline(session):
            return subscriber_pages.bulk_ids(
                session,
                query=self.query,
                search=self.search,
                list_ids=self.list_ids,
                subscription_status=self.subscription_status,
                within=self.within,
            )


@router.put(
    "/subscribers/{subscriber_id}",
    dependencies=[require_permission("subscribers:manage")],
    summary="Update a subscriber (all fields)",
)
async def update_subscriber(request: Request, caller: Caller, subscriber_id: int) -> JSONResponse:
    return await _update(request, caller, subscriber_id, full=True)


@router.patch(
    "/subscribers/{subscriber_id}",
    dependencies=[require_permission("subscribers:manage")],
    summary="Update some fields of a subscriber",
)
async def patch_subscriber(request: Request, caller: Caller, subscriber_id: int) -> JSONResponse:
    return await _update(request, caller, subscriber_id, full=False)


async def _update(
    request: Request, caller: Principal, subscriber_id: int, full: bool
) -> JSONResponse:
    """PUT sets every field (no `lists` removes every subscription, as in listmonk); PATCH
    changes only the fields present (attribs are merged)."""
    body = await json_object(request)
    email = text_field(body, "email", 320)
    name = text_field(body, "name", 500)
    status = text_field(body, "status")
    attribs = object_field(body, "attribs")
    list_ids = ids_field(body, "lists")
    preconfirm = bool_field(body, "preconfirm_subscriptions")
    if full and not email:
        raise bad_request("email: required")
    check_target_lists(caller, list_ids or [])
    # A list-scoped caller replaces only the subscriptions to lists it manages.
    within = manageable(caller) if scoped(caller) else None

    def work(session: Session) -> dict[str, Any]:
        found = subscriber_service.get(session, subscriber_id)
        merged = attribs
        if attribs is not None and not full:
            merged = {**found.attribs, **attribs}
        subscriber_service.update_subscriber(
            session,
            found,
            email=email,
            name=name if name is not None or not full else "",
            attribs=merged if merged is not None or not full else {},
            status=status if status is not None or not full else "enabled",
            list_ids=list_ids if list_ids is not None or not full else [],
            preconfirm=preconfirm,
            within=within,
        )
        return _one(session, subscriber_id, caller)

    return data(await run_db(request, work, write=True))


@router.put(
    "/subscribers/{subscriber_id}/blocklist",
    dependencies=[require_permission("subscribers:manage")],
    summary="Blocklist one subscriber",
)
async def blocklist_one(request: Request, subscriber_id: int) -> JSONResponse:
    return await act_on_one(
        request, subscriber_id, subscriber_service.get, subscriber_service.blocklist
    )


@router.delete(
    "/subscribers/{subscriber_id}",
    dependencies=[require_permission("subscribers:manage")],
    summary="Delete one subscriber",
)
async def delete_one(request: Request, subscriber_id: int) -> JSONResponse:
    return await act_on_one(
        request, subscriber_id, subscriber_service.get, subscriber_service.delete_subscribers
    )


@router.delete(
    "/subscribers",
    dependencies=[require_permission("subscribers:manage")],
    summary="Delete subscribers by id (?id=1&id=2)",
)
async def delete_many(request: Request, caller: Caller, id: Repeated = None) -> JSONResponse:
    ids = query_ids(id or [], "id")
    if not ids:
        raise bad_request("id: at least one subscriber id is required")

    def work(session: Session) -> None:
        check_subscribers(session, caller, ids)
        subscriber_service.delete_subscribers(session, ids)

    await run_db(request, work, write=True)
    return data(True)


@router.get(
    "/subscribers/{subscriber_id}/bounces",
    dependencies=[require_permission("bounces:get")],
    summary="A subscriber's bounces",
)
async def subscriber_bounces(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        subscriber_service.get(session, subscriber_id)
        found = bounce_service.list_bounces(
            session, BounceFilter(subscriber_id=subscriber_id), per_page=None
        )
        return [serialize.bounce(row) for row in found.results]

    return data(await run_db(request, work))


@router.delete(
    "/subscribers/{subscriber_id}/bounces",
    dependencies=[require_permission("bounces:manage")],
    summary="Delete a subscriber's bounces",
)
async def delete_subscriber_bounces(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        subscriber_service.get(session, subscriber_id)
        bounce_service.delete_bounces(session, BounceFilter(subscriber_id=subscriber_id))
        return True

    return data(await run_db(request, work, write=True))
