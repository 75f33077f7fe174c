"""The admin Bounces page's filters.

- `ix_bounces_domain_created_at` (domain, created_at): listing and counting one domain's
  bounces reads that domain's entries only, newest first, instead of scanning every bounce.
- `ix_bounces_filters` (type, reason, source, campaign_id, created_at): counting the bounces
  of a type, reason, source or campaign (the page's total) reads this narrow index instead of
  the wide rows (diagnostics, meta).

Revision ID: 0012_bounce_indexes
Revises: 0011_hygiene2
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012_bounce_indexes"
down_revision = "0011_hygiene2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bounces_domain_created_at", "bounces", ["domain", "created_at"])
    op.create_index(
        "ix_bounces_filters", "bounces", ["type", "reason", "source", "campaign_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_bounces_filters", table_name="bounces")
    op.drop_index("ix_bounces_domain_created_at", table_name="bounces")
