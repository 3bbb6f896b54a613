"""provisional claims: a claim naming a referral billing has not heard of (or not as decided) is priced
provisionally and priced again when the referral's event arrives

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("pricing", sa.String(length=12), server_default="final", nullable=False))
    op.add_column("claims", sa.Column("awaiting_referral_id", sa.Uuid(), nullable=True))
    op.add_column("claims", sa.Column("provisional_share", sa.BigInteger(), nullable=True))
    op.add_column("claims", sa.Column("repriced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_claims_awaiting",
        "claims",
        ["awaiting_referral_id"],
        postgresql_where=sa.text("awaiting_referral_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_claims_awaiting", table_name="claims")
    for name in ("repriced_at", "provisional_share", "awaiting_referral_id", "pricing"):
        op.drop_column("claims", name)
