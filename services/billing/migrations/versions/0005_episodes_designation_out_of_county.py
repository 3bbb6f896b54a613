"""one chain per up-and-down episode (the billing read model of referrals keeps the direction and the
upward referral a downward one continues), designated providers (定点: the read model of institutions keeps
the registry's flag), out-of-county care (转外就医) recorded by the insurance agency and charged to the
resident's community budget, and the termination time of a family-doctor contract (a terminated contract
is paid only for the months before it ended)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("leg", sa.String(length=4), server_default="none", nullable=False))
    op.add_column("rm_referrals", sa.Column("direction", sa.String(length=10), nullable=True))
    op.add_column("rm_referrals", sa.Column("continues_referral_id", sa.Uuid(), nullable=True))
    # rows kept before billing read the flag stay reimbursed, as they were, until the institution's next
    # registry event (or a replay of the registry topics) says otherwise
    op.add_column(
        "rm_institutions",
        sa.Column("insurance_designated", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    # rows kept before billing read it stay without one (paid to their end date, as before) until the
    # contract's next registry event or a replay of registry.contracts
    op.add_column("rm_contracts", sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "out_of_county_care",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_no", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("month", sa.SmallInteger(), nullable=False),
        sa.Column("settled_on", sa.Date(), nullable=False),
        sa.Column("destination_code", sa.String(length=40), nullable=True),
        sa.Column("destination_name", sa.String(length=200), nullable=False),
        sa.Column("destination_province", sa.String(length=6), nullable=False),
        sa.Column("destination_city", sa.String(length=6), nullable=True),
        sa.Column("diagnosis_icd10", sa.String(length=10), nullable=False),
        sa.Column("referred", sa.Boolean(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("total_cost", sa.BigInteger(), nullable=False),
        sa.Column("fund_share", sa.BigInteger(), nullable=False),
        sa.Column("journal_id", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["journal_id"], ["journals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("county_code", "record_no"),
    )
    op.create_index(
        "ix_out_of_county_care_period", "out_of_county_care", ["county_code", "year", "month"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_out_of_county_care_period", table_name="out_of_county_care")
    op.drop_table("out_of_county_care")
    op.drop_column("rm_contracts", "terminated_at")
    op.drop_column("rm_institutions", "insurance_designated")
    op.drop_column("rm_referrals", "continues_referral_id")
    op.drop_column("rm_referrals", "direction")
    op.drop_column("claims", "leg")
