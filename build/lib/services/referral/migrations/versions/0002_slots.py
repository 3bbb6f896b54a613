"""slots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:48:12.490510
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('department_code', sa.String(length=40), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=True),
    sa.Column('device', sa.String(length=100), nullable=True),
    sa.Column('resource_type', sa.String(length=20), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('family_doctor_share', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('published_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sessions_find', 'sessions', ['institution_id', 'department_code', 'starts_at'], unique=False)
    op.create_table('waitlist',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('department_code', sa.String(length=40), nullable=False),
    sa.Column('resource_type', sa.String(length=20), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('pools', postgresql.ARRAY(sa.String(length=20)), nullable=False),
    sa.Column('urgency', sa.String(length=10), nullable=False),
    sa.Column('urgency_rank', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('offered_slot_id', sa.Uuid(), nullable=True),
    sa.Column('offer_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_waitlist_queue', 'waitlist', ['institution_id', 'department_code', 'resource_type', 'status'], unique=False)
    op.create_table('slots',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('slot_no', sa.Integer(), nullable=False),
    sa.Column('pool', sa.String(length=20), nullable=False),
    sa.Column('published_pool', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('hold_id', sa.Uuid(), nullable=True),
    sa.Column('hold_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hold_for_resident_id', sa.Uuid(), nullable=True),
    sa.Column('hold_referral_id', sa.Uuid(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('session_id', 'slot_no')
    )
    op.create_index('ix_slots_free', 'slots', ['session_id', 'pool', 'slot_no'], unique=False)
    op.create_table('bookings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slot_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('resident_id', sa.Uuid(), nullable=False),
    sa.Column('pool', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('booked_by', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ),
    sa.ForeignKeyConstraint(['slot_id'], ['slots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_bookings_resident_id'), 'bookings', ['resident_id'], unique=False)
    op.create_index(op.f('ix_bookings_session_id'), 'bookings', ['session_id'], unique=False)
    op.create_index('uq_booking_resident_session', 'bookings', ['session_id', 'resident_id'], unique=True, postgresql_where=sa.text("status = 'booked'"))
    op.create_index('uq_booking_slot', 'bookings', ['slot_id'], unique=True, postgresql_where=sa.text("status = 'booked'"))



def downgrade() -> None:

    op.drop_index('uq_booking_slot', table_name='bookings', postgresql_where=sa.text("status = 'booked'"))
    op.drop_index('uq_booking_resident_session', table_name='bookings', postgresql_where=sa.text("status = 'booked'"))
    op.drop_index(op.f('ix_bookings_session_id'), table_name='bookings')
    op.drop_index(op.f('ix_bookings_resident_id'), table_name='bookings')
    op.drop_table('bookings')
    op.drop_index('ix_slots_free', table_name='slots')
    op.drop_table('slots')
    op.drop_index('ix_waitlist_queue', table_name='waitlist')
    op.drop_table('waitlist')
    op.drop_index('ix_sessions_find', table_name='sessions')
    op.drop_table('sessions')

