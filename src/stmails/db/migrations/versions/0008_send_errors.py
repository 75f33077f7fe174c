"""A campaign's send errors: how many, the latest ones, and why the sender paused it.

`campaigns.send_errors` counts the messages that failed before delivery (or whose delivery is
in doubt), `campaigns.last_errors` keeps the latest of them, and `campaigns.pause_reason` says
why the sender paused the campaign (a setting that cannot work, or `app.max_send_errors`
errors in a row). Existing campaigns start with none.

Revision ID: 0008_send_errors
Revises: 0007_bounce_attribution
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_send_errors"
down_revision = "0007_bounce_attribution"
branch_labels = None
depends_on = None

# JSON documents are JSONB on PostgreSQL (as in 0001_initial).
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both databases (constant defaults fill existing rows). A
    # batch operation would rebuild the SQLite table and so drop its analytics triggers.
    op.add_column(
        "campaigns",
        sa.Column("send_errors", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "campaigns",
        sa.Column("last_errors", JSON_DOC, nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column(
        "campaigns",
        sa.Column(
            "pause_reason", sa.String(length=1000), nullable=False, server_default=sa.text("''")
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("last_errors")
        batch.drop_column("send_errors")
