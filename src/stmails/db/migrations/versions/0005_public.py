"""The subscriber-facing pages: the campaign type and public archive fields, and the rate
events the public sign-up and confirmation mail are limited by.

Revision ID: 0005_public
Revises: 0004_media
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_public"
down_revision = "0004_media"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Added at the end of the table, as the models declare them; the server defaults fill the
    # campaigns that exist already (regular, not archived).
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("type", sa.String(length=16), server_default="regular", nullable=False)
        )
        batch.add_column(
            sa.Column("archive", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch.add_column(sa.Column("archive_slug", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("archive_template_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("archive_meta", JSON_DOC, server_default=sa.text("'{}'"), nullable=False)
        )
    op.create_index("uq_campaigns_archive_slug", "campaigns", ["archive_slug"], unique=True)
    op.create_table(
        "rate_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_events")),
    )
    op.create_index("ix_rate_events_key_created_at", "rate_events", ["key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_rate_events_key_created_at", table_name="rate_events")
    op.drop_table("rate_events")
    op.drop_index("uq_campaigns_archive_slug", table_name="campaigns")
    with op.batch_alter_table("campaigns") as batch:
        for column in ("archive_meta", "archive_template_id", "archive_slug", "archive", "type"):
            batch.drop_column(column)
