"""the community's lead hospital must exist: the foreign key 0001 declared but never created

`use_alter` constraints are skipped by `op.create_table`, so 0001 left `communities.lead_institution_id`
unchecked; found by tests/integration/test_schema_matches_models.py.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a lead pointing at no institution cannot be kept; clear it before the check exists
    op.execute(
        "UPDATE communities SET lead_institution_id = NULL WHERE lead_institution_id IS NOT NULL "
        "AND lead_institution_id NOT IN (SELECT id FROM institutions)"
    )
    op.create_foreign_key(
        "fk_community_lead", "communities", "institutions", ["lead_institution_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint("fk_community_lead", "communities", type_="foreignkey")
