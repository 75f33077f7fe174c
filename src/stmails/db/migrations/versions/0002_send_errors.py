"""A campaign's send errors: how many, the latest ones, and why the sender paused it.

`campaigns.send_errors` counts the messages that failed before delivery (or whose delivery is
in doubt), `campaigns.last_errors` keeps the latest of them, and `campaigns.pause_reason` says
why the sender paused the campaign (a setting that cannot work, or `app.max_send_errors`
errors in a row). Existing campaigns start with none.

Revision ID: 0002_send_errors
Revises: 0001_initial
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_send_errors"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# JSON documents are JSONB on PostgreSQL (as in 0001_initial).
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add NOT NULL columns with defaults in every version
    # through plain ALTER TABLE; on PostgreSQL it is plain ALTER TABLE.
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("send_errors", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("last_errors", JSON_DOC, nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column(
                "pause_reason", sa.String(length=1000), nullable=False, server_default=sa.text("''")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("last_errors")
        batch.drop_column("send_errors")
