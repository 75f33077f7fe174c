"""Sender-domain hygiene: DKIM keys and DMARC aggregate reports (issue 17).

Written to match `stmails.db.models` (DkimKey, DmarcReport, DmarcRecord);
`tests/db/test_migrations.py` compares the two on SQLite and PostgreSQL.

Revision ID: 0002_hygiene
Revises: 0001_initial
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_hygiene"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # The CHECK text of models.one_of.
    return " OR ".join(f"{column} = '{value}'" for value in values)


def upgrade() -> None:
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("activated_at", TIMESTAMP, nullable=True),
        sa.Column("retired_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            _one_of("algorithm", ("rsa-sha256", "ed25519-sha256")),
            name=op.f("ck_dkim_keys_algorithm"),
        ),
        sa.CheckConstraint(
            _one_of("status", ("pending", "active", "retiring", "retired")),
            name=op.f("ck_dkim_keys_status"),
        ),
        sa.CheckConstraint(
            _one_of("source", ("generated", "imported")), name=op.f("ck_dkim_keys_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_keys")),
        sa.UniqueConstraint("domain", "selector", name=op.f("uq_dkim_keys_domain_selector")),
    )
    op.create_table(
        "dmarc_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_name", sa.String(length=255), nullable=False),
        sa.Column("report_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("begin_at", TIMESTAMP, nullable=False),
        sa.Column("end_at", TIMESTAMP, nullable=False),
        sa.Column("policy", JSON_DOC, nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            _one_of("source", ("upload", "mailbox")), name=op.f("ck_dmarc_reports_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_reports")),
        sa.UniqueConstraint(
            "org_name", "report_id", name=op.f("uq_dmarc_reports_org_name_report_id")
        ),
    )
    op.create_index(
        "ix_dmarc_reports_domain_begin_at", "dmarc_reports", ["domain", "begin_at"], unique=False
    )
    op.create_table(
        "dmarc_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("source_ip", sa.String(length=45), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("dkim_aligned", sa.Boolean(), nullable=False),
        sa.Column("spf_aligned", sa.Boolean(), nullable=False),
        sa.Column("header_from", sa.String(length=253), nullable=False),
        sa.Column("envelope_from", sa.String(length=253), nullable=False),
        sa.Column("dkim_results", JSON_DOC, nullable=False),
        sa.Column("spf_results", JSON_DOC, nullable=False),
        sa.Column("reasons", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["dmarc_reports.id"],
            name=op.f("fk_dmarc_records_report_id_dmarc_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmarc_records")),
    )
    op.create_index("ix_dmarc_records_report_id", "dmarc_records", ["report_id"], unique=False)
    op.create_index(
        "ix_dmarc_records_header_from_source_ip",
        "dmarc_records",
        ["header_from", "source_ip"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_dmarc_records_header_from_source_ip", table_name="dmarc_records")
    op.drop_index("ix_dmarc_records_report_id", table_name="dmarc_records")
    op.drop_table("dmarc_records")
    op.drop_index("ix_dmarc_reports_domain_begin_at", table_name="dmarc_reports")
    op.drop_table("dmarc_reports")
    op.drop_table("dkim_keys")
