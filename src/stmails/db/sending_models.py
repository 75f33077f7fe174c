"""Tables the sending side adds to the schema (kept beside `models.py`, same metadata)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stmails.db.models import Base
from stmails.db.types import utcnow


class CampaignUnsubscribe(Base):
    """One unsubscribe that came through a campaign's link or List-Unsubscribe (its counter)."""

    __tablename__ = "campaign_unsubscribes"
    __table_args__ = (UniqueConstraint("campaign_id", "subscriber_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
