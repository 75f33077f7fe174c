"""What the rules do to subscribers: unsubscribe, blocklist, or delete (erase).

Deleting erases the personal data bounces hold about the subscriber and keeps the address's
hash, so that the history and the suppression list still know it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from stmails.db.models import Bounce, Subscriber, SubscriberList
from stmails.db.types import email_hash, normalize_email
from stmails.services import suppression
from stmails.services.settings import BounceAction

# What an erased address reads as inside kept diagnostics.
ERASED = "[erased]"


def act_on_many(
    session: Session,
    targets: Sequence[tuple[Subscriber, str, BounceAction]],
    now: datetime,
) -> set[int]:
    """Apply each (subscriber, address hash, action), with one UPDATE per kind of change.

    Returns the ids of the subscribers that changed (rows already in the wanted state are not
    written again).
    """
    leaving = sorted(s.id for s, _, action in targets if action in ("unsubscribe", "blocklist"))
    blocked = [s for s, _, action in targets if action == "blocklist"]
    changed: set[int] = set()
    if leaving:
        changed.update(
            session.scalars(
                update(SubscriberList)
                .where(
                    SubscriberList.subscriber_id.in_(leaving),
                    SubscriberList.status != "unsubscribed",
                )
                .values(status="unsubscribed", updated_at=now)
                .returning(SubscriberList.subscriber_id)
                .execution_options(synchronize_session=False)
            )
        )
    if blocked:
        changed.update(
            session.scalars(
                update(Subscriber)
                .where(
                    Subscriber.id.in_(sorted(s.id for s in blocked)),
                    Subscriber.status != "blocklisted",
                )
                .values(status="blocklisted", updated_at=now)
                .returning(Subscriber.id)
                .execution_options(synchronize_session=False)
            )
        )
        # Keep the loaded objects true to the database without writing them again.
        for subscriber in blocked:
            set_committed_value(subscriber, "status", "blocklisted")
            set_committed_value(subscriber, "updated_at", now)
    for subscriber, hashed, action in targets:
        if action == "delete":
            changed.add(subscriber.id)
            erase_subscriber(session, subscriber, hashed or email_hash(subscriber.email))
    return changed


def erase_subscriber(session: Session, subscriber: Subscriber, hashed: str) -> None:
    """Delete `subscriber` and the personal data bounces hold about it; keep the hash.

    Its bounces stay (the history) without subscriber, with the address replaced by its hash,
    the address scrubbed from diagnostics and the metadata dropped. Suppression entries of the
    address keep only the hash. Subscriptions and send records go with the subscriber.
    """
    addresses = {normalize_email(subscriber.email)}
    rows = session.scalars(
        select(Bounce).where(
            or_(Bounce.subscriber_id == subscriber.id, Bounce.email_hash == hashed)
        )
    )
    for row in rows:
        addresses.add(normalize_email(row.email))
        row.subscriber_id = None
        row.email = hashed
        row.email_hash = hashed
        row.meta = {}
    session.flush()
    pattern = _address_pattern(a for a in addresses if "@" in a)
    if pattern is not None:
        for row in session.scalars(select(Bounce).where(Bounce.email_hash == hashed)):
            row.diagnostic = pattern.sub(ERASED, row.diagnostic)
    suppression.erase(session, subscriber.email)
    session.delete(subscriber)
    session.flush()


def _address_pattern(addresses: Any) -> re.Pattern[str] | None:
    alternatives = sorted({re.escape(a) for a in addresses}, key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
