"""Who a campaign's next batch goes to, checked just before the send (steps 1 and 2 of the
exactly-once run, see `runner`): the lists' subscribers after the campaign's position, each
with the lists it may receive the campaign through, or why it is skipped (subscriber status,
subscription, suppression, a domain the watcher held, the campaign's segment)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, select
from sqlalchemy.orm import Session

from stmails.db.in_list import in_list
from stmails.db.models import Campaign, MailingList, Subscriber, SubscriberList
from stmails.db.prepared import Prepared
from stmails.db.types import normalize_email
from stmails.services.alerts import watch
from stmails.services.hygiene import segments
from stmails.services.sending.compose import Recipient
from stmails.services.suppression import check_batch_detail


@dataclass
class Candidate:
    """A recipient of a batch: the lists it receives the campaign through, the Message-ID of
    its claim, and why it is skipped ('' when it is not)."""

    recipient: Recipient
    lists: list[int]
    message_id: str = ""
    skip: str = ""


def _batch_statement() -> Any:
    # A batch's subscribers, each with its subscriptions to the campaign's lists (one row per
    # subscription, or one row of NULLs): one statement compiled once, run on the driver.
    people = cast(Table, Subscriber.__table__)
    links = cast(Table, SubscriberList.__table__)
    optins = cast(Table, MailingList.__table__)
    p, k, o = people.c, links.c, optins.c
    return (
        select(
            p.id,
            p.uuid,
            p.email,
            p.name,
            p.status,
            p.attribs,
            p.created_at,
            p.updated_at,
            k.list_id,
            k.status,
            o.optin,
        )
        .select_from(people)
        .outerjoin(links, and_(k.subscriber_id == p.id, in_list(k.list_id, "lists")))
        .outerjoin(optins, o.id == k.list_id)
        .where(in_list(p.id, "ids"))
    )


_BATCH = Prepared(_batch_statement())
# The next batch's subscriber ids: the lists' subscribers after the campaign's position.
_NEXT_IDS = Prepared(
    select(SubscriberList.subscriber_id)
    .where(
        in_list(SubscriberList.list_id, "lists"),
        SubscriberList.subscriber_id
        > func.coalesce(
            select(Campaign.last_subscriber_id)
            .where(Campaign.id == bindparam("campaign"))
            .scalar_subquery(),
            0,
        ),
    )
    .group_by(SubscriberList.subscriber_id)
    .order_by(SubscriberList.subscriber_id)
    .limit(bindparam("size"))
)


def next_ids(session: Session, campaign_id: int, lists: Sequence[int], size: int) -> list[int]:
    """The ids of the next `size` subscribers of `lists` after the campaign's position
    (`campaigns.last_subscriber_id`), in id order."""
    parameters = {"campaign": campaign_id, "lists": list(lists), "size": size}
    return [row[0] for row in _NEXT_IDS.rows(session.connection(), parameters)]


def candidates(
    session: Session,
    ids: Sequence[int],
    lists: Sequence[int],
    *,
    optin: bool,
    segment: segments.Segment,
    campaign_id: int,
    now: Callable[[], datetime],
) -> list[Candidate]:
    """Subscribers `ids` with the lists they may receive this campaign through, or why not.

    An opt-in campaign (`optin`) goes to the unconfirmed subscribers of its double opt-in
    lists; any other to the confirmed ones, and the unconfirmed of single opt-in lists."""
    subscribers: dict[int, tuple[Any, ...]] = {}
    subscriptions: dict[int, list[tuple[int, str, str]]] = {}
    for row in _BATCH.rows(session.connection(), {"ids": list(ids), "lists": list(lists)}):
        sub_id, list_id = row[0], row[8]
        if sub_id not in subscribers:
            subscribers[sub_id] = row
        if list_id is not None:
            subscriptions.setdefault(sub_id, []).append((list_id, row[9], row[10]))
    found: list[Candidate] = []
    for sub_id in ids:
        subscriber = subscribers.get(sub_id)
        if subscriber is None:
            continue
        candidate = Candidate(
            Recipient(
                id=subscriber[0],
                uuid=subscriber[1],
                email=subscriber[2],
                name=subscriber[3],
                status=subscriber[4],
                attribs=subscriber[5] or {},
                created_at=subscriber[6],
                updated_at=subscriber[7],
            ),
            [],
        )
        subs = subscriptions.get(sub_id, [])
        candidate.lists = [
            list_id
            for list_id, status, list_optin in subs
            if (
                status == "unconfirmed" and list_optin == "double"
                if optin
                else status == "confirmed" or (status == "unconfirmed" and list_optin != "double")
            )
        ]
        if subscriber[4] != "enabled":
            candidate.skip = f"subscriber_{subscriber[4]}"
        elif not candidate.lists:
            statuses = {status for _, status, _ in subs}
            candidate.skip = "unsubscribed" if "unsubscribed" in statuses else "unconfirmed"
        found.append(candidate)
    apply_suppressions(session, found, campaign_id, now)
    apply_segment(session, found, segment, optin, now)
    return found


def apply_segment(
    session: Session,
    candidates: Sequence[Candidate],
    segment: segments.Segment,
    optin: bool,
    now: Callable[[], datetime],
) -> None:
    """Skips the candidates the campaign's segment or a segment's frequency cap leaves
    out (an opt-in campaign is never narrowed: it asks for consent)."""
    if optin:
        return
    live = [c for c in candidates if not c.skip]
    left_out = segments.skips(session, segment, [c.recipient.id for c in live], now())
    for candidate in live:
        reason = left_out.get(candidate.recipient.id)
        if reason:
            candidate.skip = reason


def apply_suppressions(
    session: Session,
    candidates: Sequence[Candidate],
    campaign_id: int,
    now: Callable[[], datetime],
) -> int:
    """Skips the candidates whose address is suppressed (for one of their lists, or globally)
    or whose domain the deliverability watcher held for campaign `campaign_id` (0: none);
    returns how many were suppressed."""
    live = [c for c in candidates if not c.skip]
    held = watch.held_domains(session, campaign_id) if campaign_id else set()
    if held:
        # Domains the watcher held: deferred, sent if an admin releases the domain.
        for candidate in live:
            domain = watch.domain_of(candidate.recipient.email)
            if domain in held:
                candidate.skip = f"{watch.HELD}{domain}"[:200]
        live = [c for c in live if not c.skip]
    found = check_batch_detail(session, [c.recipient.email for c in live], now=now())
    count = 0
    for candidate in live:
        status = found.get(normalize_email(candidate.recipient.email))
        hit = status.blocking(candidate.lists) if status is not None else None
        if hit is not None:
            where = "list" if hit.scope == "list" else hit.kind
            candidate.skip = f"suppressed:{where}:{hit.reason}"
            count += 1
    return count
