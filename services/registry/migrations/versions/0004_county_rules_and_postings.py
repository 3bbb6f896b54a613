"""per-county registry rules with history; practitioners' professions; resident and rotating postings

The coverage targets, the first-in-county minimum and the posting rules were code constants; they are
now each county's settings (`county_policies`, one row per version, tied to the county's region).
Practitioners carry their profession (physician, nurse, public health); a posting its kind (resident or
rotating), the role the posted person fills and, when rotating, the days of the week (004 §七). Rows from
before are what the registry could record then: physicians on resident postings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.county_policy import create_policy_table, drop_policy_table

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, type, the value rows from before get)
NEW_COLUMNS = (
    ("practitioners", "profession", sa.String(length=20), "physician"),
    ("postings", "kind", sa.String(length=20), "resident"),
    ("postings", "role", sa.String(length=30), "physician"),
    ("postings", "weekdays", postgresql.ARRAY(sa.String(length=3)), "{}"),
)


def upgrade() -> None:
    create_policy_table()
    op.create_foreign_key(
        "fk_county_policies_region", "county_policies", "regions", ["county_code"], ["code"]
    )
    for table, column, type_, before in NEW_COLUMNS:
        op.add_column(table, sa.Column(column, type_, nullable=False, server_default=before))
        op.alter_column(table, column, server_default=None)  # new rows state it (the models' defaults)


def downgrade() -> None:
    """Refused while the registry holds what 0003 cannot express (a nurse's title, a rotating posting):
    dropping the columns would silently turn them into stationed physicians."""
    inexpressible = op.get_bind().scalar(
        sa.text(
            "SELECT (SELECT count(*) FROM practitioners WHERE profession <> 'physician')"
            " + (SELECT count(*) FROM postings WHERE kind <> 'resident' OR role <> 'physician')"
        )
    )
    if inexpressible:
        raise RuntimeError(
            f"{inexpressible} practitioners or postings are not physicians on resident postings;"
            " revision 0003 cannot hold them: remove or export them before downgrading"
        )
    for table, column, _, _ in reversed(NEW_COLUMNS):
        op.drop_column(table, column)
    drop_policy_table()
