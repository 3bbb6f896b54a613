"""referral schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 20:34:28.982225
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.tables import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "referrals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("priority", sa.Boolean(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("resident_community_id", sa.Uuid(), nullable=False),
        sa.Column("from_institution_id", sa.Uuid(), nullable=False),
        sa.Column("from_tier", sa.String(length=20), nullable=False),
        sa.Column("from_community_id", sa.Uuid(), nullable=True),
        sa.Column("from_practitioner_id", sa.Uuid(), nullable=True),
        sa.Column("to_institution_id", sa.Uuid(), nullable=True),
        sa.Column("to_tier", sa.String(length=20), nullable=True),
        sa.Column("to_community_id", sa.Uuid(), nullable=True),
        sa.Column("to_department_code", sa.String(length=40), nullable=True),
        sa.Column("destination_name", sa.String(length=200), nullable=True),
        sa.Column("approver_institution_id", sa.Uuid(), nullable=True),
        sa.Column("diagnosis_icd10", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("clinical_summary", sa.Text(), nullable=False),
        sa.Column("result_refs", postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column("grassroots_reason", sa.String(length=40), nullable=True),
        sa.Column("out_of_county_reason", sa.String(length=1000), nullable=True),
        sa.Column("downward_reason", sa.String(length=40), nullable=True),
        sa.Column("emergency_review_pending", sa.Boolean(), nullable=False),
        sa.Column("replaces_referral_id", sa.Uuid(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("discharge_summary", sa.Text(), nullable=True),
        sa.Column("answer_code", sa.String(length=40), nullable=True),
        sa.Column("answer_note", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_referrals_inbox", "referrals", ["to_institution_id", "status"], unique=False)
    op.create_index("ix_referrals_outbox", "referrals", ["from_institution_id", "created_at"], unique=False)
    op.create_index(op.f("ix_referrals_resident_id"), "referrals", ["resident_id"], unique=False)
    op.create_index(op.f("ix_referrals_status"), "referrals", ["status"], unique=False)
    op.create_table(
        "rm_catalogue_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("catalogue", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("icd10", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rm_catalogue_lookup", "rm_catalogue_entries", ["county_code", "icd10"], unique=False)
    op.create_table(
        "rm_communities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("lead_institution_id", sa.Uuid(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rm_contracts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_rm_contracts_resident_id"), "rm_contracts", ["resident_id"], unique=False)
    op.create_table(
        "rm_institutions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("membership", sa.String(length=20), nullable=True),
        sa.Column("departments", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rm_practitioners",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=30), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rm_residents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("home_institution_id", sa.Uuid(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rm_teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("members", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "follow_up_visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("owner_team_id", sa.Uuid(), nullable=True),
        sa.Column("owner_institution_id", sa.Uuid(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("referral_id", "seq"),
    )
    op.create_index(
        op.f("ix_follow_up_visits_referral_id"), "follow_up_visits", ["referral_id"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=20), nullable=False),
        sa.Column("recipient_id", sa.String(length=100), nullable=False),
        sa.Column("message_zh", sa.String(length=500), nullable=False),
        sa.Column("message_en", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notifications_referral_id"), "notifications", ["referral_id"], unique=False)
    op.create_table(
        "referral_timeline",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_referral_timeline_referral_id"), "referral_timeline", ["referral_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_referral_timeline_referral_id"), table_name="referral_timeline")
    op.drop_table("referral_timeline")
    op.drop_index(op.f("ix_notifications_referral_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_follow_up_visits_referral_id"), table_name="follow_up_visits")
    op.drop_table("follow_up_visits")
    op.drop_table("rm_teams")
    op.drop_table("rm_residents")
    op.drop_table("rm_practitioners")
    op.drop_table("rm_institutions")
    op.drop_index(op.f("ix_rm_contracts_resident_id"), table_name="rm_contracts")
    op.drop_table("rm_contracts")
    op.drop_table("rm_communities")
    op.drop_index("ix_rm_catalogue_lookup", table_name="rm_catalogue_entries")
    op.drop_table("rm_catalogue_entries")
    op.drop_index(op.f("ix_referrals_status"), table_name="referrals")
    op.drop_index(op.f("ix_referrals_resident_id"), table_name="referrals")
    op.drop_index("ix_referrals_outbox", table_name="referrals")
    op.drop_index("ix_referrals_inbox", table_name="referrals")
    op.drop_table("referrals")
    drop_platform_tables()
