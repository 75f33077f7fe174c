"""Managing subscribers as listmonk's API does: query, create, update, delete, blocklist, lists.

Functions take a Session and never commit (the caller does). Errors the caller can fix raise
`ValueError` subclasses: `Conflict` (an address already exists), `NotFound` (an unknown id) and
`Invalid` (a bad value, naming the field).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.orm import Session

from stmails.db.models import (
    SUBSCRIBER_STATUSES,
    SUBSCRIPTION_STATUSES,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.db.types import normalize_email, utcnow
from stmails.services.subscriber_query import QueryColumns, parse_query

ORDER_FIELDS = ("id", "email", "name", "status", "created_at", "updated_at")
MEMBERSHIP_ACTIONS = ("add", "remove", "unsubscribe")
MAX_NAME = 500
MAX_ATTRIBS_KEYS = 1000


class Invalid(ValueError):
    """A value the caller sent is not acceptable; the message names the field."""


class Conflict(ValueError):
    """The request conflicts with what is stored (e.g. the address already exists)."""


class NotFound(ValueError):
    """An id the caller named does not exist."""


def query_columns(session: Session) -> QueryColumns:
    """The columns listmonk's `query` may use on subscribers, for this session's database."""
    columns: dict[str, ColumnElement[Any]] = {}
    for name in ("id", "uuid", "email", "name", "attribs", "status", "created_at", "updated_at"):
        column = getattr(Subscriber, name)
        columns[name] = column
        columns[f"subscribers.{name}"] = column
    dialect = session.get_bind().dialect.name
    return QueryColumns(columns, frozenset({"attribs", "subscribers.attribs"}), dialect)


def check_email(email: Any, field: str = "email") -> str:
    """The address, trimmed, if it is a syntactically valid email address; Invalid otherwise."""
    if not isinstance(email, str) or not email.strip():
        raise Invalid(f"{field}: required")
    text = email.strip()
    if len(text) > 320:
        raise Invalid(f"{field}: longer than 320 characters")
    try:
        validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise Invalid(f"{field}: {exc}") from None
    return text


def check_status(status: Any) -> str:
    if status not in SUBSCRIBER_STATUSES:
        raise Invalid(f"status: one of {', '.join(SUBSCRIBER_STATUSES)}")
    return str(status)


def check_attribs(attribs: Any) -> dict[str, Any]:
    if attribs is None:
        return {}
    if not isinstance(attribs, dict):
        raise Invalid("attribs: must be a JSON object")
    if len(attribs) > MAX_ATTRIBS_KEYS:
        raise Invalid(f"attribs: more than {MAX_ATTRIBS_KEYS} keys")
    return attribs


def check_ids(ids: Any, field: str) -> list[int]:
    """A list of positive integer ids (bool is not an id)."""
    if ids is None:
        return []
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids
    ):
        raise Invalid(f"{field}: must be an array of positive integer ids")
    return list(dict.fromkeys(ids))


def find_by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address, compared case-insensitively."""
    return session.scalars(
        select(Subscriber).where(func.lower(Subscriber.email) == normalize_email(email))
    ).first()


@dataclass(frozen=True, slots=True)
class Membership:
    """One list a subscriber is on, with the subscription's status."""

    list: MailingList
    subscription_status: str
    created_at: Any
    updated_at: Any


def memberships(session: Session, subscriber_ids: Sequence[int]) -> dict[int, list[Membership]]:
    """The lists of each subscriber, in list id order."""
    found: dict[int, list[Membership]] = {sid: [] for sid in subscriber_ids}
    if not subscriber_ids:
        return found
    rows = session.execute(
        select(SubscriberList, MailingList)
        .join(MailingList, MailingList.id == SubscriberList.list_id)
        .where(SubscriberList.subscriber_id.in_(list(subscriber_ids)))
        .order_by(SubscriberList.subscriber_id, MailingList.id)
    )
    for link, mailing_list in rows:
        found[link.subscriber_id].append(
            Membership(mailing_list, link.status, link.created_at, link.updated_at)
        )
    return found


def filtered(
    session: Session,
    query: str = "",
    list_ids: Sequence[int] = (),
    subscription_status: str = "",
) -> Select[Subscriber]:
    """The SELECT of subscribers matching listmonk's `query`, `list_id` and status filters."""
    statement = select(Subscriber)
    if query.strip():
        statement = statement.where(parse_query(query, query_columns(session)))
    if subscription_status and subscription_status not in SUBSCRIPTION_STATUSES:
        raise Invalid(f"subscription_status: one of {', '.join(SUBSCRIPTION_STATUSES)}")
    if list_ids:
        member = select(SubscriberList.subscriber_id).where(
            SubscriberList.list_id.in_(list(list_ids))
        )
        if subscription_status:
            member = member.where(SubscriberList.status == subscription_status)
        statement = statement.where(Subscriber.id.in_(member))
    return statement


def search(
    session: Session,
    statement: Select[Subscriber],
    order_by: str,
    order: str,
    offset: int,
    limit: int | None,
) -> tuple[list[Subscriber], int]:
    """One page of `statement`'s subscribers and the total count."""
    if order_by not in ORDER_FIELDS:
        raise Invalid(f"order_by: one of {', '.join(ORDER_FIELDS)}")
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    column = getattr(Subscriber, order_by)
    ordering = column.desc() if order == "desc" else column.asc()
    page = statement.order_by(ordering, Subscriber.id.asc()).offset(offset)
    if limit is not None:
        page = page.limit(limit)
    return list(session.scalars(page)), total


def _existing_lists(session: Session, list_ids: Iterable[int], field: str) -> list[int]:
    wanted = list(list_ids)
    if not wanted:
        return []
    found = set(session.scalars(select(MailingList.id).where(MailingList.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"{field}: unknown list id(s) {', '.join(map(str, missing))}")
    return wanted


def _subscribe(
    session: Session, subscriber: Subscriber, list_ids: Sequence[int], status: str
) -> None:
    current = {
        link.list_id: link
        for link in session.scalars(
            select(SubscriberList).where(SubscriberList.subscriber_id == subscriber.id)
        )
    }
    for list_id in list_ids:
        link = current.get(list_id)
        if link is None:
            session.add(SubscriberList(subscriber_id=subscriber.id, list_id=list_id, status=status))
        elif link.status == "unsubscribed" and status != "unsubscribed":
            link.status = status


def _initial_subscription_status(
    session: Session, list_ids: Sequence[int], preconfirm: bool
) -> dict[int, str]:
    """listmonk's rule: double opt-in lists start unconfirmed unless preconfirmed."""
    statuses: dict[int, str] = {}
    for mailing_list in session.scalars(select(MailingList).where(MailingList.id.in_(list_ids))):
        double = mailing_list.optin == "double"
        statuses[mailing_list.id] = "unconfirmed" if double and not preconfirm else "confirmed"
    return statuses


def create(
    session: Session,
    email: Any,
    name: Any,
    status: Any = "enabled",
    attribs: Any = None,
    list_ids: Any = None,
    preconfirm: bool = False,
) -> Subscriber:
    """A new subscriber on `list_ids`; Conflict when the address exists."""
    address = check_email(email)
    if find_by_email(session, address) is not None:
        raise Conflict("email: a subscriber with this address already exists")
    subscriber = Subscriber(
        email=address,
        name=_name(name, address),
        status=check_status(status or "enabled"),
        attribs=check_attribs(attribs),
    )
    session.add(subscriber)
    session.flush()
    lists = _existing_lists(session, check_ids(list_ids, "lists"), "lists")
    _apply_lists(session, subscriber, lists, preconfirm)
    return subscriber


def _name(name: Any, address: str) -> str:
    if name is None or name == "":
        return address.split("@", 1)[0]
    if not isinstance(name, str):
        raise Invalid("name: must be a string")
    if len(name) > MAX_NAME:
        raise Invalid(f"name: longer than {MAX_NAME} characters")
    return name.strip()


def _apply_lists(
    session: Session, subscriber: Subscriber, list_ids: Sequence[int], preconfirm: bool
) -> None:
    if subscriber.status == "blocklisted":
        # A blocklisted subscriber is kept on its lists only as unsubscribed (listmonk's rule).
        for list_id in list_ids:
            _subscribe(session, subscriber, [list_id], "unsubscribed")
        return
    statuses = _initial_subscription_status(session, list_ids, preconfirm)
    for list_id in list_ids:
        _subscribe(session, subscriber, [list_id], statuses[list_id])


def update_subscriber(
    session: Session,
    subscriber: Subscriber,
    body: dict[str, Any],
    full: bool,
) -> Subscriber:
    """Applies listmonk's PUT (`full=True`: every field replaced, lists not given are left) or
    PATCH body (`full=False`: only the fields present change; attribs are merged)."""
    if "email" in body or full:
        address = check_email(body.get("email"))
        other = find_by_email(session, address)
        if other is not None and other.id != subscriber.id:
            raise Conflict("email: a subscriber with this address already exists")
        subscriber.email = address
    if "name" in body or full:
        subscriber.name = _name(body.get("name"), subscriber.email)
    if "status" in body or full:
        subscriber.status = check_status(body.get("status") or "enabled")
    if "attribs" in body:
        attribs = check_attribs(body.get("attribs"))
        subscriber.attribs = attribs if full else {**subscriber.attribs, **attribs}
    elif full:
        subscriber.attribs = {}
    subscriber.updated_at = utcnow()
    if "lists" in body or full:
        lists = _existing_lists(session, check_ids(body.get("lists"), "lists"), "lists")
        session.execute(
            delete(SubscriberList).where(
                SubscriberList.subscriber_id == subscriber.id,
                SubscriberList.list_id.not_in(lists),
            )
        )
        _apply_lists(session, subscriber, lists, bool(body.get("preconfirm_subscriptions")))
    if subscriber.status == "blocklisted":
        _unsubscribe_all(session, [subscriber.id])
    session.flush()
    return subscriber


def _unsubscribe_all(session: Session, subscriber_ids: Sequence[int]) -> None:
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.subscriber_id.in_(list(subscriber_ids)))
        .values(status="unsubscribed", updated_at=utcnow())
    )


def delete_subscribers(session: Session, ids: Sequence[int]) -> int:
    """Deletes the subscribers (their subscriptions go with them); returns how many."""
    if not ids:
        return 0
    result = session.execute(delete(Subscriber).where(Subscriber.id.in_(list(ids))))
    session.execute(delete(SubscriberList).where(SubscriberList.subscriber_id.in_(list(ids))))
    return int(getattr(result, "rowcount", 0) or 0)


def blocklist(session: Session, ids: Sequence[int]) -> int:
    """Blocklists the subscribers and unsubscribes them from every list; returns how many."""
    if not ids:
        return 0
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(list(ids)))
        .values(status="blocklisted", updated_at=utcnow())
    )
    _unsubscribe_all(session, ids)
    return int(getattr(result, "rowcount", 0) or 0)


def manage_lists(
    session: Session, ids: Sequence[int], action: Any, list_ids: Sequence[int], status: Any
) -> None:
    """listmonk's `PUT /api/subscribers/lists`: add to, remove from, or unsubscribe from lists."""
    if action not in MEMBERSHIP_ACTIONS:
        raise Invalid(f"action: one of {', '.join(MEMBERSHIP_ACTIONS)}")
    if not ids:
        raise Invalid("ids: at least one subscriber id is required")
    if not list_ids:
        raise Invalid("target_list_ids: at least one list id is required")
    _existing_lists(session, list_ids, "target_list_ids")
    if action == "remove":
        session.execute(
            delete(SubscriberList).where(
                SubscriberList.subscriber_id.in_(list(ids)),
                SubscriberList.list_id.in_(list(list_ids)),
            )
        )
        return
    if action == "unsubscribe":
        session.execute(
            update(SubscriberList)
            .where(
                SubscriberList.subscriber_id.in_(list(ids)),
                SubscriberList.list_id.in_(list(list_ids)),
            )
            .values(status="unsubscribed", updated_at=utcnow())
        )
        return
    if status not in SUBSCRIPTION_STATUSES:
        raise Invalid(f"status: one of {', '.join(SUBSCRIPTION_STATUSES)} (required for add)")
    existing = set(session.scalars(select(Subscriber.id).where(Subscriber.id.in_(list(ids)))))
    for subscriber_id in ids:
        if subscriber_id not in existing:
            continue
        links = {
            link.list_id: link
            for link in session.scalars(
                select(SubscriberList).where(SubscriberList.subscriber_id == subscriber_id)
            )
        }
        for list_id in list_ids:
            link = links.get(list_id)
            if link is None:
                session.add(
                    SubscriberList(subscriber_id=subscriber_id, list_id=list_id, status=status)
                )
            else:
                link.status = str(status)
                link.updated_at = utcnow()
