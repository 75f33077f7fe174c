"""listmonk's subscriber API: `/api/subscribers` and its sub-resources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import DataError, ProgrammingError
from sqlalchemy.orm import Session

from stmails.db.models import Subscriber
from stmails.services import bounces as bounce_service
from stmails.services import subscriber_admin as admin
from stmails.services.bounces import BounceFilter
from stmails.web import serialize
from stmails.web.body import json_object, run_db
from stmails.web.deps import require_user
from stmails.web.errors import bad_request, not_found
from stmails.web.responses import JSONResponse, Repeated, data, parse_order, parse_page

router = APIRouter(tags=["subscribers"], dependencies=[Depends(require_user)])

JSON_BODY = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}


def _get(session: Session, subscriber_id: int) -> Subscriber:
    found = session.get(Subscriber, subscriber_id)
    if found is None:
        raise not_found("subscriber")
    return found


def _one(session: Session, subscriber_id: int) -> dict[str, Any]:
    found = _get(session, subscriber_id)
    return serialize.subscriber(found, admin.memberships(session, [found.id])[found.id])


def _ids(values: list[str], field: str) -> list[int]:
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                number = int(part)
            except ValueError:
                raise bad_request(f"{field}: must be integer ids") from None
            if number < 1:
                raise bad_request(f"{field}: must be positive integer ids")
            ids.append(number)
    return ids


@router.get("/subscribers", summary="Query and list subscribers")
async def list_subscribers(
    request: Request,
    query: str = "",
    list_id: Repeated = None,
    subscription_status: str = "",
    order_by: str = "id",
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> JSONResponse:
    """listmonk's `GET /api/subscribers`; `query` is an SQL-like expression, parsed safely."""
    paging = parse_page(page, per_page)
    direction = parse_order(order)
    list_ids = _ids(list_id or [], "list_id")

    def work(session: Session) -> dict[str, Any]:
        statement = admin.filtered(session, query, list_ids, subscription_status)
        try:
            rows, total = admin.search(
                session, statement, order_by, direction, paging.offset, paging.limit
            )
        except (DataError, ProgrammingError) as exc:
            # The expression parsed, but the database could not evaluate it for these rows
            # (e.g. a cast of text that is not a number on PostgreSQL).
            message = f"query: the database could not evaluate it ({_first_line(exc)})"
            raise bad_request(message) from None
        lists = admin.memberships(session, [row.id for row in rows])
        results = [serialize.subscriber(row, lists[row.id]) for row in rows]
        return paging.envelope(results, total, query)

    return data(await run_db(request, work))


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return text[0][:200] if text else "error"


@router.get("/subscribers/{subscriber_id}", summary="Get one subscriber")
async def get_subscriber(request: Request, subscriber_id: int) -> JSONResponse:
    return data(await run_db(request, lambda s: _one(s, subscriber_id)))


@router.post("/subscribers", summary="Create a subscriber", openapi_extra=JSON_BODY)
async def create_subscriber(request: Request) -> JSONResponse:
    """listmonk's `POST /api/subscribers`: email, name, status, lists, attribs, preconfirm."""
    body = await json_object(request)

    def work(session: Session) -> dict[str, Any]:
        created = admin.create(
            session,
            body.get("email"),
            body.get("name"),
            body.get("status") or "enabled",
            body.get("attribs"),
            body.get("lists"),
            bool(body.get("preconfirm_subscriptions")),
        )
        session.flush()
        return _one(session, created.id)

    return data(await run_db(request, work, write=True))


@router.put("/subscribers/lists", summary="Add, remove or unsubscribe subscribers on lists")
async def manage_lists(request: Request) -> JSONResponse:
    body = await json_object(request)

    def work(session: Session) -> bool:
        admin.manage_lists(
            session,
            admin.check_ids(body.get("ids"), "ids"),
            body.get("action"),
            admin.check_ids(body.get("target_list_ids"), "target_list_ids"),
            body.get("status"),
        )
        return True

    return data(await run_db(request, work, write=True))


@router.put("/subscribers/blocklist", summary="Blocklist several subscribers")
async def blocklist_many(request: Request) -> JSONResponse:
    body = await json_object(request)
    ids = admin.check_ids(body.get("ids"), "ids")
    if not ids:
        raise bad_request("ids: at least one subscriber id is required")
    await run_db(request, lambda s: admin.blocklist(s, ids), write=True)
    return data(True)


@router.put("/subscribers/query/blocklist", summary="Blocklist the subscribers a query matches")
async def blocklist_query(request: Request) -> JSONResponse:
    body = await json_object(request)
    ids = await run_db(request, lambda s: _matching_ids(s, body, require_query=True))
    await run_db(request, lambda s: admin.blocklist(s, ids), write=True)
    return data(True)


@router.post("/subscribers/query/delete", summary="Delete the subscribers a query matches")
async def delete_query(request: Request) -> JSONResponse:
    body = await json_object(request)
    ids = await run_db(request, lambda s: _matching_ids(s, body, require_query=not body.get("all")))
    await run_db(request, lambda s: admin.delete_subscribers(s, ids), write=True)
    return data(True)


@router.put("/subscribers/query/lists", summary="Change list memberships of matching subscribers")
async def lists_query(request: Request) -> JSONResponse:
    body = await json_object(request)
    ids = await run_db(request, lambda s: _matching_ids(s, body, require_query=False))

    def work(session: Session) -> bool:
        if ids:
            admin.manage_lists(
                session,
                ids,
                body.get("action"),
                admin.check_ids(body.get("target_list_ids"), "target_list_ids"),
                body.get("status"),
            )
        return True

    return data(await run_db(request, work, write=True))


def _matching_ids(session: Session, body: dict[str, Any], require_query: bool) -> list[int]:
    query = body.get("query") or ""
    if not isinstance(query, str):
        raise bad_request("query: must be a string")
    if require_query and not query.strip():
        raise bad_request("query: required")
    statement = admin.filtered(
        session,
        query,
        admin.check_ids(body.get("list_ids"), "list_ids"),
        str(body.get("subscription_status") or ""),
    )
    id_query = statement.with_only_columns(Subscriber.id)
    return list(session.scalars(id_query))


@router.put("/subscribers/{subscriber_id}", summary="Update a subscriber (all fields)")
async def update_subscriber(request: Request, subscriber_id: int) -> JSONResponse:
    return await _update(request, subscriber_id, full=True)


@router.patch("/subscribers/{subscriber_id}", summary="Update some fields of a subscriber")
async def patch_subscriber(request: Request, subscriber_id: int) -> JSONResponse:
    return await _update(request, subscriber_id, full=False)


async def _update(request: Request, subscriber_id: int, full: bool) -> JSONResponse:
    body = await json_object(request)

    def work(session: Session) -> dict[str, Any]:
        admin.update_subscriber(session, _get(session, subscriber_id), body, full=full)
        return _one(session, subscriber_id)

    return data(await run_db(request, work, write=True))


@router.put("/subscribers/{subscriber_id}/blocklist", summary="Blocklist one subscriber")
async def blocklist_one(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        _get(session, subscriber_id)
        admin.blocklist(session, [subscriber_id])
        return True

    return data(await run_db(request, work, write=True))


@router.delete("/subscribers/{subscriber_id}", summary="Delete one subscriber")
async def delete_one(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        _get(session, subscriber_id)
        admin.delete_subscribers(session, [subscriber_id])
        return True

    return data(await run_db(request, work, write=True))


@router.delete("/subscribers", summary="Delete subscribers by id (?id=1&id=2)")
async def delete_many(request: Request, id: Repeated = None) -> JSONResponse:
    ids = _ids(id or [], "id")
    if not ids:
        raise bad_request("id: at least one subscriber id is required")
    await run_db(request, lambda s: admin.delete_subscribers(s, ids), write=True)
    return data(True)


@router.get("/subscribers/{subscriber_id}/bounces", summary="A subscriber's bounces")
async def subscriber_bounces(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        _get(session, subscriber_id)
        found = bounce_service.list_bounces(
            session, BounceFilter(subscriber_id=subscriber_id), per_page=None
        )
        return [serialize.bounce(row) for row in found.results]

    return data(await run_db(request, work))


@router.delete("/subscribers/{subscriber_id}/bounces", summary="Delete a subscriber's bounces")
async def delete_subscriber_bounces(request: Request, subscriber_id: int) -> JSONResponse:
    def work(session: Session) -> bool:
        _get(session, subscriber_id)
        bounce_service.delete_bounces(session, BounceFilter(subscriber_id=subscriber_id))
        return True

    return data(await run_db(request, work, write=True))
