"""Deliverability alerts: the alerts, their delivery outbox, held domains, and the figures
behind an automatic pause on the campaign.

- `alerts`: thresholds the watcher saw crossed (services.alerts), acknowledged through the API.
- `alert_deliveries`: one row per alert and destination (email, webhook), retried with backoff.
- `campaign_holds`: recipient domains whose messages in a campaign are deferred.
- `campaigns.alert_figures`: the figures of the alert that paused or held the campaign.
- `ix_subscribers_created_at`: the monthly report's subscribers created in the month.

Revision ID: 0013_alerts
Revises: 0012_bounce_indexes
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013_alerts"
down_revision = "0012_bounce_indexes"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> sa.TextClause:
    # The CHECK text of models.one_of: comparisons joined by OR.
    return sa.text(" OR ".join(f"{column} = '{value}'" for value in values))


def upgrade() -> None:
    # The monthly report counts the subscribers created in the month.
    op.create_index("ix_subscribers_created_at", "subscribers", ["created_at"])
    # A plain ADD COLUMN: a SQLite table rebuild would drop the campaigns' analytics triggers.
    op.add_column(
        "campaigns",
        sa.Column("alert_figures", JSON_DOC, server_default=sa.text("'{}'"), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("figures", JSON_DOC, nullable=False),
        sa.Column("actions", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(_one_of("level", ("warning", "critical")), name=op.f("ck_alerts_level")),
        sa.CheckConstraint(
            _one_of("kind", ("bounce_rate", "complaint_rate", "domain_bounce_rate")),
            name=op.f("ck_alerts_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_alerts_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_campaign_id", "alerts", ["campaign_id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("channel", ("email", "webhook")), name=op.f("ck_alert_deliveries_channel")
        ),
        sa.CheckConstraint(
            _one_of("status", ("pending", "sent", "failed")),
            name=op.f("ck_alert_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index(
        "ix_alert_deliveries_status_next_attempt_at",
        "alert_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])
    op.create_table(
        "campaign_holds",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_holds_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_campaign_holds_alert_id_alerts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "domain", name=op.f("pk_campaign_holds")),
    )


def downgrade() -> None:
    op.drop_table("campaign_holds")
    op.drop_index("ix_alert_deliveries_alert_id", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_status_next_attempt_at", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_campaign_id", table_name="alerts")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_column("campaigns", "alert_figures")
    op.drop_index("ix_subscribers_created_at", table_name="subscribers")
