"""listmonk API parity: list status, campaign attributes, body source and media, list roles,
and the default templates of a new installation.

- `lists.status` (active, archived).
- `campaigns.attribs`, `campaigns.body_source`, and `campaign_media` (the media a campaign
  carries, with the filename kept when the file is deleted).
- `roles.type` (user, list) with names unique per type, `role_lists` (what a list role grants
  on each list) and `users.list_role_id`.
- The default campaign template and a sample transactional template, each stored when the
  database has no template of its type (a new installation; an upgrade that has its own
  templates keeps them as they are).

Revision ID: 0009_parity
Revises: 0008_send_errors
Create Date: 2026-12-08
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stmails.services.default_templates import DEFAULTS

revision = "0009_parity"
down_revision = "0008_send_errors"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # The CHECK text of models.one_of: comparisons joined by OR.
    return " OR ".join(f"{column} = '{value}'" for value in values)


def upgrade() -> None:
    # New columns go at the end of their tables, as the models declare them; the server
    # defaults fill the rows that exist already (active lists, user roles, empty attribs).
    with op.batch_alter_table("lists") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_lists_status"), sa.text(_one_of("status", ("active", "archived")))
        )
    # Plain ADD COLUMNs: a SQLite table rebuild would drop the campaigns' analytics triggers.
    op.add_column(
        "campaigns", sa.Column("attribs", JSON_DOC, server_default=sa.text("'{}'"), nullable=False)
    )
    op.add_column("campaigns", sa.Column("body_source", sa.Text(), nullable=True))
    op.create_table(
        "campaign_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_media_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_campaign_media_media_id_media"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_media")),
        sa.UniqueConstraint(
            "campaign_id", "media_id", name=op.f("uq_campaign_media_campaign_id_media_id")
        ),
    )
    with op.batch_alter_table("roles") as batch:
        batch.add_column(
            sa.Column("type", sa.String(length=16), server_default="user", nullable=False)
        )
        batch.drop_constraint(op.f("uq_roles_name"), type_="unique")
        batch.create_unique_constraint(op.f("uq_roles_type_name"), ["type", "name"])
        batch.create_check_constraint(
            op.f("ck_roles_type"), sa.text(_one_of("type", ("user", "list")))
        )
    op.create_table(
        "role_lists",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("permissions", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_role_lists_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], name=op.f("fk_role_lists_list_id_lists"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_id", "list_id", name=op.f("pk_role_lists")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("list_role_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_users_list_role_id_roles"),
            "roles",
            ["list_role_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    _install_default_templates()


def _install_default_templates() -> None:
    # The table as it stands at this revision (not the models, which later migrations change).
    templates = sa.table(
        "templates",
        sa.column("name", sa.String()),
        sa.column("type", sa.String()),
        sa.column("subject", sa.String()),
        sa.column("body", sa.Text()),
        sa.column("is_default", sa.Boolean()),
        sa.column("created_at", TIMESTAMP),
        sa.column("updated_at", TIMESTAMP),
    )
    connection = op.get_bind()
    now = datetime.now(UTC)
    for default in DEFAULTS:
        of_type = templates.c.type == default.type
        present = connection.execute(
            sa.select(sa.func.count()).select_from(templates).where(of_type)
        ).scalar()
        if present:
            continue
        connection.execute(
            templates.insert().values(
                name=default.name,
                type=default.type,
                subject=default.subject,
                body=default.body,
                is_default=default.is_default,
                created_at=now,
                updated_at=now,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("fk_users_list_role_id_roles"), type_="foreignkey")
        batch.drop_column("list_role_id")
    op.drop_table("role_lists")
    # List roles cannot survive the return of globally unique user-role names.
    op.execute("DELETE FROM roles WHERE type = 'list'")
    with op.batch_alter_table("roles") as batch:
        batch.drop_constraint(op.f("ck_roles_type"), type_="check")
        batch.drop_constraint(op.f("uq_roles_type_name"), type_="unique")
        batch.create_unique_constraint(op.f("uq_roles_name"), ["name"])
        batch.drop_column("type")
    op.drop_table("campaign_media")
    op.drop_column("campaigns", "body_source")
    op.drop_column("campaigns", "attribs")
    with op.batch_alter_table("lists") as batch:
        batch.drop_constraint(op.f("ck_lists_status"), type_="check")
        batch.drop_column("status")
