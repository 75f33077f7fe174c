"""Subscribers and their list subscriptions: the CRUD the API and the importer build on.

Functions take a Session and never commit. Addresses are validated (syntax only) and unique
whatever their case; a clash raises Conflict("email"). Listing takes an optional SQLAlchemy
condition, which is how the web layer's parsed `query` parameter arrives (never raw SQL text).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stmails.db.models import (
    SUBSCRIBER_STATUSES,
    SUBSCRIPTION_STATUSES,
    Campaign,
    MailingList,
    Subscriber,
    SubscriberList,
)
from stmails.db.types import normalize_email, utcnow
from stmails.services.errors import Conflict, InvalidInput, NotFound
from stmails.services.pages import (
    Page,
    check_paging,
    count_of,
    delete_by_ids,
    get_or_404,
    ordering,
    paged,
)

ListAction = Literal["add", "remove", "unsubscribe"]
SUBSCRIBER_ORDER = {
    name: getattr(Subscriber, name)
    for name in ("id", "email", "name", "status", "created_at", "updated_at")
}


def clean_email(email: str) -> str:
    """The address with its domain normalized (IDNA, lowercase); InvalidInput when malformed."""
    text = email.strip()
    if len(text) > 320:
        raise InvalidInput("email", "longer than 320 characters")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput("email", str(exc)) from None


def _check_status(status: str) -> str:
    if status not in SUBSCRIBER_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(SUBSCRIBER_STATUSES)}")
    return status


def _check_attribs(attribs: Mapping[str, Any] | None) -> dict[str, Any]:
    if attribs is None:
        return {}
    if not isinstance(attribs, Mapping):
        raise InvalidInput("attribs", "must be a JSON object")
    return dict(attribs)


def get(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber with `subscriber_id`; NotFound otherwise."""
    return get_or_404(session, Subscriber, subscriber_id, "subscriber")


def get_by_uuid(session: Session, uuid: str) -> Subscriber | None:
    """The subscriber with `uuid`, or None."""
    return session.scalars(select(Subscriber).where(Subscriber.uuid == uuid.lower())).first()


def uuids_by_id(session: Session, subscriber_id: int, campaign_id: int = 0) -> tuple[str, str]:
    """(subscriber uuid, campaign uuid) of these ids (as a VERP token names them); "" for an id
    that is 0 or no longer exists."""
    subscriber = session.scalar(select(Subscriber.uuid).where(Subscriber.id == subscriber_id))
    campaign = None
    if campaign_id:
        campaign = session.scalar(select(Campaign.uuid).where(Campaign.id == campaign_id))
    return subscriber or "", campaign or ""


# The one way an address is matched against subscribers: both sides normalized (surrounding
# space removed, lowercased), the stored side as the unique index `uq_subscribers_email_lower`
# spells it so the lookup uses that index.
EMAIL_KEY = func.lower(Subscriber.email)


def _email_column() -> ColumnElement[str]:
    return EMAIL_KEY


def email_key(email: str) -> str:
    """The form an address is looked up by (`normalize_email`): ` Ann@X.org ` -> `ann@x.org`."""
    return normalize_email(email)


def email_in(emails: Iterable[str]) -> ColumnElement[bool]:
    """A condition on Subscriber rows: the address is one of `emails` (normalized first), for
    queries that select columns rather than Subscriber objects."""
    return EMAIL_KEY.in_(sorted({email_key(e) for e in emails}))


def get_by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber with address `email` (any case, surrounding space ignored), or None."""
    key = email_key(email)
    if not key:
        return None
    return session.scalars(select(Subscriber).where(_email_column() == key)).first()


def get_many_by_email(session: Session, emails: Iterable[str]) -> dict[str, Subscriber]:
    """The subscribers whose address is among `emails`, keyed by `email_key(address)`; an
    address with no subscriber is absent."""
    wanted = {email_key(e) for e in emails} - {""}
    if not wanted:
        return {}
    rows = session.scalars(select(Subscriber).where(EMAIL_KEY.in_(sorted(wanted))))
    return {email_key(s.email): s for s in rows}


def create(
    session: Session,
    *,
    email: str,
    name: str = "",
    attribs: Mapping[str, Any] | None = None,
    status: str = "enabled",
    list_ids: Sequence[int] = (),
    preconfirm: bool = False,
    now: datetime | None = None,
) -> Subscriber:
    """A new subscriber, subscribed to `list_ids` (confirmed when `preconfirm`, or for
    single opt-in lists; unconfirmed otherwise). Conflict when the address exists."""
    now = now or utcnow()
    sub = Subscriber(
        email=clean_email(email),
        name=name.strip()[:500] or clean_email(email).split("@")[0],
        attribs=_check_attribs(attribs),
        status=_check_status(status),
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(sub)
    except IntegrityError:
        raise Conflict("email", "a subscriber with this e-mail exists") from None
    if list_ids:
        subscribe(session, [sub.id], list_ids, preconfirm=preconfirm, now=now)
    return sub


def update_subscriber(
    session: Session,
    subscriber: Subscriber,
    *,
    email: str | None = None,
    name: str | None = None,
    attribs: Mapping[str, Any] | None = None,
    status: str | None = None,
    list_ids: Sequence[int] | None = None,
    preconfirm: bool = False,
    now: datetime | None = None,
    within: Collection[int] | None = None,
) -> Subscriber:
    """Change the given fields; `list_ids` replaces the subscriptions (kept ones keep their
    status), only among the lists `within` when given (the others stay as they are).
    Blocklisting also unsubscribes every list. Conflict on a taken address."""
    now = now or utcnow()
    if email is not None:
        subscriber.email = clean_email(email)
    if name is not None:
        subscriber.name = name.strip()[:500]
    if attribs is not None:
        subscriber.attribs = _check_attribs(attribs)
    if status is not None:
        subscriber.status = _check_status(status)
    subscriber.updated_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("email", "a subscriber with this e-mail exists") from None
    if list_ids is not None:
        dropped = [
            SubscriberList.subscriber_id == subscriber.id,
            SubscriberList.list_id.not_in(list(list_ids)),
        ]
        if within is not None:
            dropped.append(SubscriberList.list_id.in_(list(within)))
        session.execute(delete(SubscriberList).where(*dropped))
        subscribe(session, [subscriber.id], list_ids, preconfirm=preconfirm, now=now)
    if subscriber.status == "blocklisted":
        _unsubscribe_all(session, [subscriber.id], now)
    return subscriber


def delete_subscribers(session: Session, ids: Iterable[int]) -> int:
    """Delete subscribers (their subscriptions go too; their bounces stay, detached)."""
    return delete_by_ids(session, Subscriber.id, ids)


def blocklist(session: Session, ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Blocklist subscribers and unsubscribe them from every list; returns how many changed."""
    now = now or utcnow()
    id_list = list(ids)
    _unsubscribe_all(session, id_list, now)
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(id_list))
        .values(status="blocklisted", updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _unsubscribe_all(session: Session, ids: list[int], now: datetime) -> None:
    session.execute(
        update(SubscriberList)
        .where(SubscriberList.subscriber_id.in_(ids))
        .values(status="unsubscribed", updated_at=now)
        .execution_options(synchronize_session="fetch")
    )


def subscribe(
    session: Session,
    subscriber_ids: Sequence[int],
    list_ids: Sequence[int],
    *,
    status: str | None = None,
    preconfirm: bool = False,
    update_existing: bool = True,
    now: datetime | None = None,
) -> None:
    """Subscribe subscribers to lists; existing subscriptions keep their status unless `status`
    is given and `update_existing`. Without `status`: confirmed for single opt-in lists or when
    `preconfirm`, else unconfirmed. NotFound for an unknown list."""
    now = now or utcnow()
    if status is not None and status not in SUBSCRIPTION_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(SUBSCRIPTION_STATUSES)}")
    lists = {
        m.id: m for m in session.scalars(select(MailingList).where(MailingList.id.in_(list_ids)))
    }
    missing = set(list_ids) - set(lists)
    if missing:
        raise NotFound(f"lists not found: {sorted(missing)}")
    existing = {
        (row.subscriber_id, row.list_id): row
        for row in session.scalars(
            select(SubscriberList).where(
                SubscriberList.subscriber_id.in_(subscriber_ids),
                SubscriberList.list_id.in_(list_ids),
            )
        )
    }
    for sub_id in subscriber_ids:
        for list_id in lists:
            row = existing.get((sub_id, list_id))
            wanted = status or (
                "confirmed" if preconfirm or lists[list_id].optin == "single" else "unconfirmed"
            )
            if row is None:
                session.add(
                    SubscriberList(
                        subscriber_id=sub_id,
                        list_id=list_id,
                        status=wanted,
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif update_existing and status is not None and row.status != status:
                row.status, row.updated_at = status, now
    session.flush()


def manage_lists(
    session: Session,
    subscriber_ids: Sequence[int],
    list_ids: Sequence[int],
    action: ListAction,
    *,
    status: str | None = None,
    now: datetime | None = None,
) -> None:
    """listmonk's PUT /api/subscribers/lists: add to, remove from or unsubscribe from lists."""
    now = now or utcnow()
    if action == "add":
        subscribe(session, subscriber_ids, list_ids, status=status, now=now)
        return
    where = and_(
        SubscriberList.subscriber_id.in_(list(subscriber_ids)),
        SubscriberList.list_id.in_(list(list_ids)),
    )
    if action == "remove":
        session.execute(delete(SubscriberList).where(where))
    elif action == "unsubscribe":
        session.execute(
            update(SubscriberList).where(where).values(status="unsubscribed", updated_at=now)
        )
    else:
        raise InvalidInput("action", "must be add, remove or unsubscribe")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One list a subscriber is on, with the subscription's status."""

    list: MailingList
    status: str
    created_at: datetime
    updated_at: datetime
    meta: Mapping[str, Any]


def subscriptions(session: Session, subscriber_ids: Sequence[int]) -> dict[int, list[Subscription]]:
    """The subscriptions of each subscriber (by id), ordered by list id."""
    out: dict[int, list[Subscription]] = {i: [] for i in subscriber_ids}
    rows = session.execute(
        select(SubscriberList, MailingList)
        .join(MailingList, MailingList.id == SubscriberList.list_id)
        .where(SubscriberList.subscriber_id.in_(list(subscriber_ids)))
        .order_by(SubscriberList.subscriber_id, MailingList.id)
    )
    for link, mlist in rows:
        out[link.subscriber_id].append(
            Subscription(mlist, link.status, link.created_at, link.updated_at, link.meta)
        )
    return out


def on_lists(
    list_ids: Sequence[int], subscription_status: str | None = None
) -> ColumnElement[bool]:
    """The condition "subscribed to any of `list_ids`" (in `subscription_status` when given)."""
    membership = [
        SubscriberList.subscriber_id == Subscriber.id,
        SubscriberList.list_id.in_(list(list_ids)),
    ]
    if subscription_status:
        membership.append(SubscriberList.status == subscription_status)
    return exists().where(*membership)


def list_subscribers(
    session: Session,
    *,
    condition: ColumnElement[bool] | None = None,
    list_ids: Sequence[int] = (),
    subscription_status: str | None = None,
    search: str = "",
    order_by: str = "id",
    order: str = "asc",
    page: int = 1,
    per_page: int | None = 20,
) -> Page[Subscriber]:
    """Subscribers matching every given filter, one page at a time.

    `condition`: an SQLAlchemy expression over the subscribers table (the parsed `query`).
    `list_ids`: on any of these lists (with `subscription_status` when given).
    `search`: part of the name or address, any case.
    """
    terms = ordering(SUBSCRIBER_ORDER, order_by, order, Subscriber.id)
    check_paging(page, per_page)
    query = select(Subscriber)
    if condition is not None:
        query = query.where(condition)
    if list_ids:
        query = query.where(on_lists(list_ids, subscription_status))
    if search.strip():
        query = query.where(matching(search))
    total = count_of(session, query)
    ordered = query.order_by(*terms)
    return Page(list(session.scalars(paged(ordered, page, per_page))), total, page, per_page)


def matching(search: str) -> ColumnElement[bool]:
    """The condition "the name or address contains `search`" (any case; listmonk's
    `search`)."""
    pattern = f"%{_escape_like(search.strip().lower())}%"
    return or_(
        func.lower(Subscriber.email).like(pattern, escape="\\"),
        func.lower(Subscriber.name).like(pattern, escape="\\"),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def existing_ids(session: Session, ids: Iterable[int]) -> list[int]:
    """Those of `ids` that name a subscriber, in id order (a chosen set, without the ids
    deleted since it was shown)."""
    return list(
        session.scalars(select(Subscriber.id).where(Subscriber.id.in_(list(ids))).order_by("id"))
    )


def emails_of(session: Session, ids: Iterable[int]) -> list[str]:
    """The addresses of the subscribers `ids` (in no particular order)."""
    return list(session.scalars(select(Subscriber.email).where(Subscriber.id.in_(list(ids)))))
