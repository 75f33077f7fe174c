"""List hygiene on autopilot (issue 17, part 2): risk scores, verification state and sunset
state per subscriber, the transitions of the sunset policy, the scheduler's lease, and campaign
segments.

Written to match `stmails.db.models` (SubscriberHygiene, HygieneTransition, SchedulerLease,
CampaignSegment); `tests/db/test_migrations.py` compares the two on SQLite and PostgreSQL.

Revision ID: 0011_hygiene2
Revises: 0010_listmonk_links
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_hygiene2"
down_revision = "0010_listmonk_links"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # The CHECK text of models.one_of.
    return " OR ".join(f"{column} = '{value}'" for value in values)


def upgrade() -> None:
    op.create_table(
        "subscriber_hygiene",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("risk_factors", JSON_DOC, nullable=False),
        sa.Column("scored_at", TIMESTAMP, nullable=True),
        sa.Column("verify_result", sa.String(length=16), nullable=False),
        sa.Column("verify_reasons", JSON_DOC, nullable=False),
        sa.Column("verified_at", TIMESTAMP, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_at", TIMESTAMP, nullable=True),
        sa.Column("reengage_sent", sa.Integer(), nullable=False),
        sa.Column("reengage_last_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            _one_of("risk_level", ("low", "medium", "high")),
            name=op.f("ck_subscriber_hygiene_risk_level"),
        ),
        sa.CheckConstraint(
            _one_of("state", ("active", "reengaging", "reengaged", "sunset")),
            name=op.f("ck_subscriber_hygiene_state"),
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_hygiene_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_subscriber_hygiene")),
    )
    op.create_index(
        "ix_subscriber_hygiene_risk_level", "subscriber_hygiene", ["risk_level"], unique=False
    )
    op.create_index("ix_subscriber_hygiene_state", "subscriber_hygiene", ["state"], unique=False)
    op.create_table(
        "hygiene_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("meta", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("undone_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_hygiene_transitions_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hygiene_transitions")),
    )
    op.create_index(
        "ix_hygiene_transitions_subscriber_id",
        "hygiene_transitions",
        ["subscriber_id"],
        unique=False,
    )
    op.create_index(
        "ix_hygiene_transitions_created_at", "hygiene_transitions", ["created_at"], unique=False
    )
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("last_runs", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "campaign_segments",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("risk_levels", JSON_DOC, nullable=False),
        sa.Column("engagement_levels", JSON_DOC, nullable=False),
        sa.Column("verify_results", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_segments_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_segments")),
    )


def downgrade() -> None:
    op.drop_table("campaign_segments")
    op.drop_table("scheduler_leases")
    op.drop_index("ix_hygiene_transitions_created_at", table_name="hygiene_transitions")
    op.drop_index("ix_hygiene_transitions_subscriber_id", table_name="hygiene_transitions")
    op.drop_table("hygiene_transitions")
    op.drop_index("ix_subscriber_hygiene_state", table_name="subscriber_hygiene")
    op.drop_index("ix_subscriber_hygiene_risk_level", table_name="subscriber_hygiene")
    op.drop_table("subscriber_hygiene")
