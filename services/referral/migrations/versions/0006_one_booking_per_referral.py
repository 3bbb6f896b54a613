"""a referral has at most one live booking; the read model keeps each practitioner's profession

A referral's appointment is one booking: a partial unique index makes a second live booking for the same
referral impossible (races between stopping a session, cancelling and rebooking could leave two). A
database that already has such pairs keeps, per referral, the booking whose session starts at the
referral's appointment (else the newest) and cancels the others, their slots freed.

The profession (practitioner event v3) decides whether the practitioner a HIS names may take a clinical
step. Rows written before this revision read as physicians, all that versions 1 and 2 could record; a
nurse whose v3 event was read before it is corrected by replaying the registry's practitioners topic
(an event of the same version replaces the row).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "status = 'booked' AND referral_id IS NOT NULL"


def upgrade() -> None:
    op.execute(
        """
        WITH ranked AS (
            SELECT b.id, b.slot_id, row_number() OVER (
                PARTITION BY b.referral_id
                ORDER BY (s.starts_at = r.appointment_at) IS TRUE DESC, b.created_at DESC, b.id
            ) AS n
            FROM bookings b
            JOIN sessions s ON s.id = b.session_id
            LEFT JOIN referrals r ON r.id = b.referral_id
            WHERE b.status = 'booked' AND b.referral_id IS NOT NULL
        ), dropped AS (
            UPDATE bookings SET status = 'cancelled', cancelled_at = now()
            FROM ranked WHERE bookings.id = ranked.id AND ranked.n > 1
            RETURNING ranked.slot_id
        )
        UPDATE slots SET status = 'free' WHERE id IN (SELECT slot_id FROM dropped)
        """
    )
    op.create_index(
        "uq_booking_referral", "bookings", ["referral_id"], unique=True, postgresql_where=sa.text(LIVE)
    )
    op.add_column(
        "rm_practitioners",
        sa.Column("profession", sa.String(20), server_default="physician", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("rm_practitioners", "profession")
    op.drop_index("uq_booking_referral", table_name="bookings", postgresql_where=sa.text(LIVE))
