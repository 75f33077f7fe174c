"""The media library (issue 16): uploaded files, their thumbnails and image sizes.

Written to match `stmails.db.models.Media`; `tests/db/test_migrations.py` compares the two on
SQLite and PostgreSQL.

Revision ID: 0004_media
Revises: 0003_ui_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_media"
down_revision = "0003_ui_sessions"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("thumb", sa.String(length=255), nullable=False),
        sa.Column("meta", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # The CHECK text of models.one_of.
        sa.CheckConstraint(
            "provider = 'filesystem' OR provider = 's3'", name=op.f("ck_media_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
        sa.UniqueConstraint("provider", "filename", name=op.f("uq_media_provider_filename")),
        sa.UniqueConstraint("uuid", name=op.f("uq_media_uuid")),
    )


def downgrade() -> None:
    op.drop_table("media")
