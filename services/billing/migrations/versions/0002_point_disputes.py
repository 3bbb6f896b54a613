"""point disputes: a member contests the DIP points of an inpatient case inside its community

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("kind", sa.String(length=10), server_default="charge", nullable=False))
    for name in ("charged_points", "claimed_points", "decided_points"):
        op.add_column("disputes", sa.Column(name, sa.Numeric(14, 4), nullable=True))


def downgrade() -> None:
    for name in ("decided_points", "claimed_points", "charged_points", "kind"):
        op.drop_column("disputes", name)
