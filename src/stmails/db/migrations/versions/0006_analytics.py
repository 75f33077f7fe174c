"""Engagement tracking and deliverability analytics.

Tracked links, opens and clicks (listmonk's `links`, `campaign_views`, `link_clicks`), each
subscriber's first open and click of a campaign, the recipient domain of every bounce, the
analytics rollups and the triggers that keep them (db.rollups). Figures for the events stored
before this migration are computed here once, so existing history shows up at once.

Revision ID: 0006_analytics
Revises: 0005_public
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stmails.db import rollups
from stmails.db.models import DOMAIN_COUNTERS, HOURLY_COUNTERS, REASON_COUNTERS

revision = "0006_analytics"
down_revision = "0005_public"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _counters(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in names]


def upgrade() -> None:
    op.add_column(
        "bounces",
        sa.Column("domain", sa.String(length=255), server_default="", nullable=False),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_links_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("campaign_id", "url", name=op.f("uq_links_campaign_id_url")),
        sa.UniqueConstraint("uuid", name=op.f("uq_links_uuid")),
    )
    for table, extra in (
        ("campaign_views", []),
        ("link_clicks", [sa.Column("link_id", sa.Integer(), nullable=False)]),
    ):
        foreign = [
            sa.ForeignKeyConstraint(
                ["campaign_id"],
                ["campaigns.id"],
                name=op.f(f"fk_{table}_campaign_id_campaigns"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["subscriber_id"],
                ["subscribers.id"],
                name=op.f(f"fk_{table}_subscriber_id_subscribers"),
                ondelete="SET NULL",
            ),
        ]
        if extra:
            foreign.append(
                sa.ForeignKeyConstraint(
                    ["link_id"],
                    ["links.id"],
                    name=op.f(f"fk_{table}_link_id_links"),
                    ondelete="CASCADE",
                )
            )
        op.create_table(
            table,
            sa.Column("id", BIG_ID, nullable=False),
            sa.Column("campaign_id", sa.Integer(), nullable=False),
            *extra,
            sa.Column("subscriber_id", sa.Integer(), nullable=True),
            sa.Column("machine", sa.String(length=32), nullable=False),
            sa.Column("created_at", TIMESTAMP, nullable=False),
            *foreign,
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_campaign_id_created_at", table, ["campaign_id", "created_at"])
        op.create_index(f"ix_{table}_subscriber_id", table, ["subscriber_id"])
    op.create_index("ix_link_clicks_link_id", "link_clicks", ["link_id"])
    op.create_table(
        "campaign_engagement",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("viewed_at", TIMESTAMP, nullable=True),
        sa.Column("clicked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_engagement_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_campaign_engagement_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "subscriber_id", name=op.f("pk_campaign_engagement")
        ),
    )
    hourly = HOURLY_COUNTERS
    op.create_table(
        "analytics_changes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("domain", sa.String(length=255), server_default="", nullable=False),
        sa.Column("reason", sa.String(length=64), server_default="", nullable=False),
        sa.Column("source", sa.String(length=64), server_default="", nullable=False),
        *_counters(hourly),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_changes")),
    )
    op.create_table(
        "analytics_hourly",
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        *_counters(hourly),
        sa.PrimaryKeyConstraint("hour", "campaign_id", name=op.f("pk_analytics_hourly")),
    )
    op.create_table(
        "analytics_reasons",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        *_counters(REASON_COUNTERS),
        sa.PrimaryKeyConstraint(
            "day", "campaign_id", "reason", "source", name=op.f("pk_analytics_reasons")
        ),
    )
    op.create_table(
        "analytics_domains",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        *_counters(DOMAIN_COUNTERS),
        sa.PrimaryKeyConstraint("domain", "day", "campaign_id", name=op.f("pk_analytics_domains")),
        sqlite_with_rowid=False,
    )
    for table in ("analytics_hourly", "analytics_reasons", "analytics_domains"):
        op.create_index(f"ix_{table}_campaign_id", table, ["campaign_id"])
    connection = op.get_bind()
    dialect = connection.dialect.name
    # The history stored so far, then the triggers that keep the figures from now on.
    for statement in rollups.backfill_statements(dialect):
        connection.exec_driver_sql(statement)
    rollups.install(connection)
    # Only the rollups of this revision (later ones fill themselves from these).
    while rollups.fold(
        connection, tables=("analytics_hourly", "analytics_reasons", "analytics_domains")
    ):
        pass


def downgrade() -> None:
    connection = op.get_bind()
    for statement in rollups.drop_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)
    for table in (
        "analytics_domains",
        "analytics_reasons",
        "analytics_hourly",
        "analytics_changes",
        "campaign_engagement",
        "link_clicks",
        "campaign_views",
        "links",
    ):
        op.drop_table(table)
    with op.batch_alter_table("bounces") as batch:
        batch.drop_column("domain")
