"""A subject's stored history, as recording and `reapply()` both read it.

A subject is a subscriber (by id) or, for an address stmails does not know, the address's
hash. The send ledger's recent campaigns feed the rules' soft-bounce escalation.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from stmails.db.in_list import in_list
from stmails.db.models import Bounce, Campaign, CampaignSend


def subjects_filter() -> ColumnElement[bool]:
    """Bounces of the subscribers of the list parameter `ids` or with an address hash in the
    list parameter `hashes`: a superset of the subjects' histories, narrowed by `subject_of`
    (which drops the bounces of other subscribers that share a hash).

    Only the two indexed columns are in the condition: with `subscriber_id IS NULL` beside the
    hash, SQLite walks the subscriber index through every anonymous bounce instead.
    """
    return or_(in_list(Bounce.subscriber_id, "ids"), in_list(Bounce.email_hash, "hashes"))


def subject_of(
    subscriber_id: int | None, hashed: str, ids: Container[int | None]
) -> tuple[int | None, str] | None:
    """The subject (subscriber id, or None and the hash) a row of `subjects_filter` belongs
    to, or None when it is another subscriber's bounce found only by its hash."""
    if subscriber_id is None:
        return (None, hashed)
    return (subscriber_id, "") if subscriber_id in ids else None


def recent_campaigns_sent(
    session: Session, subscriber_id: int | None, before: datetime, limit: int
) -> list[str]:
    if subscriber_id is None or limit <= 0:
        return []
    query = (
        select(Campaign.uuid)
        .join(CampaignSend, CampaignSend.campaign_id == Campaign.id)
        .where(
            CampaignSend.subscriber_id == subscriber_id,
            CampaignSend.status == "sent",
            CampaignSend.sent_at <= before,
        )
        .order_by(CampaignSend.sent_at.desc(), CampaignSend.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def sent_before(
    session: Session, subscriber_id: int | None, before: datetime, limit: int
) -> Callable[[], list[str]]:
    """A deferred `recent_campaigns_sent` query (run only when escalation needs it)."""
    return lambda: recent_campaigns_sent(session, subscriber_id, before, limit)
