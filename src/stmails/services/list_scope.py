"""The database side of per-list access (web.list_scope decides who is scoped to which
lists): whether the subscribers or the campaign a caller names lie outside its lists.

The web layer passes plain values, the ids it was given and the caller's permitted list ids;
the conditions are built here.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from stmails.db.models import Campaign, Subscriber
from stmails.services import campaign_records
from stmails.services import subscribers as subscriber_service


def subscriber_off_lists(
    session: Session, subscriber_ids: Collection[int], list_ids: Collection[int]
) -> int | None:
    """One of `subscriber_ids` that is on none of `list_ids` (any subscription status), or None
    when each is on one of them. Unknown ids are not reported (the route answers 404)."""
    return session.scalars(
        select(Subscriber.id).where(
            Subscriber.id.in_(list(subscriber_ids)),
            ~subscriber_service.on_lists(list(list_ids)),
        )
    ).first()


def campaign_off_lists(session: Session, campaign_id: int, list_ids: Collection[int]) -> bool:
    """Whether campaign `campaign_id` exists and goes to none of `list_ids` (an unknown id is
    False: the route answers 404)."""
    found = session.scalar(
        select(Campaign.id).where(Campaign.id == campaign_id, ~campaign_records.on_lists(list_ids))
    )
    return found is not None
