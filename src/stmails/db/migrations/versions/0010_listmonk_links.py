"""listmonk's tracked links, kept by `stmails import listmonk` (issue 16).

Written to match `stmails.db.models.ListmonkLink`; `tests/db/test_migrations.py` compares the
two on SQLite and PostgreSQL.

Revision ID: 0010_listmonk_links
Revises: 0009_parity
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_listmonk_links"
down_revision = "0009_parity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listmonk_links",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_listmonk_links")),
    )


def downgrade() -> None:
    op.drop_table("listmonk_links")
