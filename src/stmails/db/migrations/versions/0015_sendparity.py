"""listmonk's sliding window (services.sending.window).

- `ix_campaign_sends_status_sent_at` (status, sent_at): the window counts the sends of the
  last hour (or whatever the window is) without scanning every send ever made.
- `campaigns.wait_reason`: why a running campaign waits (the window is full, until when);
  empty while it sends. Plain `add_column`: the table has analytics triggers.

Revision ID: 0015_sendparity
Revises: 0013_alerts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_sendparity"
down_revision = "0013_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_campaign_sends_status_sent_at", "campaign_sends", ["status", "sent_at"])
    op.add_column(
        "campaigns",
        sa.Column(
            "wait_reason", sa.String(length=1000), nullable=False, server_default=sa.text("''")
        ),
    )


def downgrade() -> None:
    op.drop_column("campaigns", "wait_reason")
    op.drop_index("ix_campaign_sends_status_sent_at", table_name="campaign_sends")
