"""Per-domain figures by month: `analytics_domain_months`, campaign mail per recipient domain and
calendar month, filled from `analytics_domains` and kept by the analytics fold (db.rollups), so
that the deliverability breakdown and report read a row per domain and month instead of one per
domain, day and campaign; an index of `analytics_domains` by day for the days around those
months; and the indexes that let the monthly report count list composition changes and
blocklisted subscribers without reading the tables' rows.

Revision ID: 0016_perf
Revises: 0015_sendparity
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stmails.db import rollups
from stmails.db.models import DOMAIN_COUNTERS

revision = "0016_perf"
down_revision = "0015_sendparity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_subscriber_lists_list_id_status", table_name="subscriber_lists")
    op.create_index(
        "ix_subscriber_lists_list_id_status_dates",
        "subscriber_lists",
        ["list_id", "status", "created_at", "updated_at"],
    )
    op.create_index("ix_subscribers_status_updated_at", "subscribers", ["status", "updated_at"])
    op.create_table(
        "analytics_domain_months",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), server_default="0", nullable=False)
            for name in DOMAIN_COUNTERS
        ),
        sa.PrimaryKeyConstraint("domain", "month", name=op.f("pk_analytics_domain_months")),
        sqlite_with_rowid=False,
    )
    # The days around whole months, read without scanning the domain-ordered table.
    op.create_index(
        "ix_analytics_domains_day",
        "analytics_domains",
        ["day", "domain", "campaign_id", *DOMAIN_COUNTERS],
    )
    connection = op.get_bind()
    connection.exec_driver_sql(rollups.month_backfill_statement(connection.dialect.name))


def downgrade() -> None:
    op.drop_index("ix_analytics_domains_day", table_name="analytics_domains")
    op.drop_table("analytics_domain_months")
    op.drop_index("ix_subscribers_status_updated_at", table_name="subscribers")
    op.drop_index("ix_subscriber_lists_list_id_status_dates", table_name="subscriber_lists")
    op.create_index("ix_subscriber_lists_list_id_status", "subscriber_lists", ["list_id", "status"])
