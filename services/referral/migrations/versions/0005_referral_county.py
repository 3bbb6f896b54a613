"""each referral keeps its referring institution's county, whose rules set its deadlines

The sweeps join every referral to its county's rules in one statement (county_policies), so the county
is a column of the referral. Existing referrals take it from the read model, as submission does: the
origin's community's county, else the institution's own region.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("referrals", sa.Column("county_code", sa.String(6), nullable=True))
    op.execute(
        """
        UPDATE referrals r SET county_code = coalesce(c.county_code, i.region_code)
        FROM rm_institutions i LEFT JOIN rm_communities c ON c.id = i.community_id
        WHERE i.id = r.from_institution_id
        """
    )


def downgrade() -> None:
    op.drop_column("referrals", "county_code")
