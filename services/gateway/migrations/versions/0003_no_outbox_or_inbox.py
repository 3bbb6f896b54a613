"""the gateway has no outbox or inbox

It publishes and consumes no events: the tables (and the relay's NOTIFY trigger) were only there because
one app factory gave every service the same platform tables. Both were always empty; the downgrade
recreates them as 0001 made them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

from shared.tables import create_event_tables, drop_event_tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_event_tables()


def downgrade() -> None:
    create_event_tables()
