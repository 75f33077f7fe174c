"""The initial schema: every table of stmails (one migration until the first release).

Written to match `stmails.db.models` exactly; `tests/db/test_migrations.py` compares the two on
SQLite and PostgreSQL.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Timestamps are timestamptz on PostgreSQL and naive-UTC text on SQLite (see db.types).
TIMESTAMP = sa.DateTime(timezone=True)
# JSON documents are JSONB on PostgreSQL.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # The CHECK text of models.one_of: comparisons joined by OR (see there why not IN).
    return " OR ".join(f"{column} = '{value}'" for value in values)


def upgrade() -> None:
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("optin", sa.String(length=16), nullable=False),
        sa.Column("tags", JSON_DOC, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(_one_of("optin", ("single", "double")), name=op.f("ck_lists_optin")),
        sa.CheckConstraint(
            _one_of("type", ("public", "private", "temporary")), name=op.f("ck_lists_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lists")),
        sa.UniqueConstraint("uuid", name=op.f("uq_lists_uuid")),
    )
    op.create_table(
        "mailbox_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("processed", "failed")), name=op.f("ck_mailbox_state_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_state")),
        sa.UniqueConstraint(
            "mailbox", "uidvalidity", "uid", name=op.f("uq_mailbox_state_mailbox_uidvalidity_uid")
        ),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", JSON_DOC, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("attribs", JSON_DOC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("enabled", "disabled", "blocklisted")),
            name=op.f("ck_subscribers_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("uuid", name=op.f("uq_subscribers_uuid")),
    )
    # Addresses are unique whatever their case.
    op.create_index(
        "uq_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=True
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        # The sha256 digest of the normalized address, as 32 raw bytes (db.types.Sha256Digest).
        sa.Column("email_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of(
                "reason",
                ("hard_bounce", "soft_bounce", "complaint", "unsubscribe", "manual", "import"),
            ),
            name=op.f("ck_suppressions_reason"),
        ),
        sa.CheckConstraint(
            _one_of("scope", ("global", "list")), name=op.f("ck_suppressions_scope")
        ),
        sa.CheckConstraint(
            "(scope = 'global') = (list_id = 0)", name=op.f("ck_suppressions_scope_list_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
    )
    # Partial unique indexes, one per kind of key (see models.Suppression).
    for key in ("email_hash", "domain"):
        op.create_index(
            f"uq_suppressions_{key}_list_id",
            "suppressions",
            [key, "list_id"],
            unique=True,
            sqlite_where=sa.text(f"{key} IS NOT NULL"),
            postgresql_where=sa.text(f"{key} IS NOT NULL"),
        )

    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("type", ("campaign", "tx", "campaign_visual")), name=op.f("ck_templates_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("permissions", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("token_hash", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_login", TIMESTAMP, nullable=True),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("enabled", "disabled")), name=op.f("ck_users_status")
        ),
        sa.CheckConstraint(_one_of("type", ("admin", "api")), name=op.f("ck_users_type")),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_users_role_id_roles"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("from_email", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("altbody", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("send_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("tags", JSON_DOC, nullable=False),
        sa.Column("headers", JSON_DOC, nullable=False),
        sa.Column("messenger", sa.String(length=100), nullable=False),
        sa.Column("to_send", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("last_subscriber_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("content_type", ("richtext", "html", "plain", "markdown", "visual")),
            name=op.f("ck_campaigns_content_type"),
        ),
        sa.CheckConstraint(
            _one_of("status", ("draft", "scheduled", "running", "paused", "cancelled", "finished")),
            name=op.f("ck_campaigns_status"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_campaigns_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("uuid", name=op.f("uq_campaigns_uuid")),
    )
    op.create_table(
        "subscriber_lists",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meta", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("unconfirmed", "confirmed", "unsubscribed")),
            name=op.f("ck_subscriber_lists_status"),
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_subscriber_lists_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_lists_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "list_id", name=op.f("pk_subscriber_lists")),
    )
    op.create_index(
        "ix_subscriber_lists_list_id_status",
        "subscriber_lists",
        ["list_id", "status"],
        unique=False,
    )

    op.create_table(
        "bounces",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("campaign_uuid", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("effective_type", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replycode", sa.String(length=16), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("feedback_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("count_key", sa.String(length=64), nullable=False),
        sa.Column("meta", JSON_DOC, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("effective_type", ("hard", "soft", "complaint")),
            name=op.f("ck_bounces_effective_type"),
        ),
        sa.CheckConstraint(
            _one_of("type", ("hard", "soft", "complaint")), name=op.f("ck_bounces_type")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_bounces_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_bounces_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_bounces_dedup_key")),
    )
    op.create_index("ix_bounces_campaign_id", "bounces", ["campaign_id"], unique=False)
    op.create_index("ix_bounces_created_at", "bounces", ["created_at"], unique=False)
    op.create_index(
        "ix_bounces_email_hash_effective_type",
        "bounces",
        ["email_hash", "effective_type"],
        unique=False,
    )
    op.create_index(
        "ix_bounces_subscriber_id_effective_type",
        "bounces",
        ["subscriber_id", "effective_type"],
        unique=False,
    )

    op.create_table(
        "campaign_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("list_name", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_lists_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_campaign_lists_list_id_lists"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_lists")),
        sa.UniqueConstraint(
            "campaign_id", "list_id", name=op.f("uq_campaign_lists_campaign_id_list_id")
        ),
    )
    op.create_table(
        "campaign_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("sent", "skipped", "failed")), name=op.f("ck_campaign_sends_status")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_sends_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_campaign_sends_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_sends")),
        sa.UniqueConstraint(
            "campaign_id", "subscriber_id", name=op.f("uq_campaign_sends_campaign_id_subscriber_id")
        ),
    )
    op.create_index(
        "ix_campaign_sends_subscriber_id_sent_at",
        "campaign_sends",
        ["subscriber_id", "sent_at"],
        unique=False,
    )
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("status", ("none", "importing", "stopping", "stopped", "finished", "failed")),
            name=op.f("ck_import_jobs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_table(
        "webhook_nonces",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("provider", "nonce", name=op.f("pk_webhook_nonces")),
    )
    op.create_index("ix_webhook_nonces_expires_at", "webhook_nonces", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_nonces_expires_at", table_name="webhook_nonces")
    op.drop_table("webhook_nonces")
    op.drop_table("import_jobs")
    op.drop_index("ix_campaign_sends_subscriber_id_sent_at", table_name="campaign_sends")

    op.drop_table("campaign_sends")
    op.drop_table("campaign_lists")
    op.drop_index("ix_bounces_subscriber_id_effective_type", table_name="bounces")
    op.drop_index("ix_bounces_email_hash_effective_type", table_name="bounces")
    op.drop_index("ix_bounces_created_at", table_name="bounces")
    op.drop_index("ix_bounces_campaign_id", table_name="bounces")

    op.drop_table("bounces")
    op.drop_index("ix_subscriber_lists_list_id_status", table_name="subscriber_lists")

    op.drop_table("subscriber_lists")
    op.drop_table("campaigns")
    op.drop_table("users")
    op.drop_table("roles")
    op.drop_table("templates")
    op.drop_index("uq_suppressions_domain_list_id", table_name="suppressions")
    op.drop_index("uq_suppressions_email_hash_list_id", table_name="suppressions")
    op.drop_table("suppressions")
    op.drop_index("uq_subscribers_email_lower", table_name="subscribers")
    op.drop_table("subscribers")
    op.drop_table("settings")
    op.drop_table("mailbox_state")
    op.drop_table("lists")
