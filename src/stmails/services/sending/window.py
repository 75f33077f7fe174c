"""listmonk's sliding window: at most `rate` campaign messages per `duration`, deployment-wide.

The count comes from the stored sends (`campaign_sends` rows with status `sent` whose `sent_at`
is inside the window; a claim in flight counts, as it is about to go out), so every sender
process sees the same number. The campaign runner asks `SlidingWindow.room()` before each
batch: it takes at most that many recipients, and when there is no room it waits (the campaign
stays running with `wait_reason` saying until when) and resumes once old sends leave the
window. Two senders deciding at the same moment can overshoot by at most one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stmails.db.models import CampaignSend


@dataclass(frozen=True)
class Room:
    """How many messages may go out now, and when room frees up when there is none."""

    free: int
    # When the oldest send inside the window leaves it (None when there is room).
    until: datetime | None = None


@dataclass(frozen=True)
class SlidingWindow:
    """At most `rate` messages per `seconds`."""

    seconds: float
    rate: int

    def describe(self) -> str:
        """The window in words, e.g. `10000 messages per 3600s`."""
        return f"{self.rate} messages per {self.seconds:g}s"

    def room(self, session: Session, now: datetime) -> Room:
        """The room left in the window ending at `now`."""
        start = now - timedelta(seconds=self.seconds)
        inside = (CampaignSend.status == "sent", CampaignSend.sent_at > start)
        count = session.scalar(select(func.count()).select_from(CampaignSend).where(*inside))
        free = self.rate - int(count or 0)
        if free > 0:
            return Room(free)
        # Room comes back when enough of the oldest sends leave: the (1 - free)-th oldest.
        oldest = session.scalar(
            select(CampaignSend.sent_at)
            .where(*inside)
            .order_by(CampaignSend.sent_at)
            .offset(-free)
            .limit(1)
        )
        until = (oldest or now) + timedelta(seconds=self.seconds)
        return Room(0, until)
