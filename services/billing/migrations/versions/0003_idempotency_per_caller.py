"""idempotency keys per caller and route, with an index for the retention purge

A key was global: two callers sending the same Idempotency-Key to a body-less POST got each other's
stored reply. Keys are now (subject, route, key); rows from before can match no request and are purged
once older than the TTL (see shared.tables.scope_idempotency_keys).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:30:00
"""

from collections.abc import Sequence

from shared.tables import scope_idempotency_keys, unscope_idempotency_keys

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    scope_idempotency_keys()


def downgrade() -> None:
    unscope_idempotency_keys()
