"""per-county referral and slot settings with history; a downward referral names the upward one it continues

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.county_policy import create_policy_table, drop_policy_table

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_policy_table()
    op.add_column(
        "referrals",
        sa.Column("continues_referral_id", sa.Uuid(), sa.ForeignKey("referrals.id"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("referrals", "continues_referral_id")
    drop_policy_table()
