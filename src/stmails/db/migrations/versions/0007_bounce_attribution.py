"""Bounces from mailboxes that `bounce.mailbox_trust` does not let act: `bounces.attributed`.

Every bounce recorded before this migration came through the rules, so it reads as attributed.

Revision ID: 0007_bounce_attribution
Revises: 0006_analytics
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_bounce_attribution"
down_revision = "0006_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "bounces",
        sa.Column("attributed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("bounces") as batch:
        batch.drop_column("attributed")
