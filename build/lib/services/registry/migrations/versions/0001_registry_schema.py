"""registry schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 20:04:57.755285
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
        "pii_access_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_code", sa.String(length=6), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["regions.code"],
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "catalogue_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("catalogue", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("icd10", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["county_code"],
            ["regions.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("county_code", "catalogue", "tier", "icd10"),
    )
    op.create_index(
        op.f("ix_catalogue_entries_county_code"), "catalogue_entries", ["county_code"], unique=False
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("lead_institution_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["county_code"],
            ["regions.code"],
        ),
        sa.ForeignKeyConstraint(
            ["lead_institution_id"], ["institutions.id"], name="fk_community_lead", use_alter=True
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(op.f("ix_communities_county_code"), "communities", ["county_code"], unique=False)
    op.create_table(
        "institutions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("membership", sa.String(length=20), nullable=True),
        sa.Column("insurance_designated", sa.Boolean(), nullable=False),
        sa.Column("service_centres", postgresql.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["regions.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(op.f("ix_institutions_community_id"), "institutions", ["community_id"], unique=False)
    op.create_index(op.f("ix_institutions_name"), "institutions", ["name"], unique=False)
    op.create_table(
        "departments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_id", "code"),
    )
    op.create_index(op.f("ix_departments_institution_id"), "departments", ["institution_id"], unique=False)
    op.create_table(
        "practitioners",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("licence_no", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=30), nullable=False),
        sa.Column("specialties", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("general_practitioner", sa.Boolean(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("licence_no"),
    )
    op.create_index(
        op.f("ix_practitioners_institution_id"), "practitioners", ["institution_id"], unique=False
    )
    op.create_index(op.f("ix_practitioners_name"), "practitioners", ["name"], unique=False)
    op.create_table(
        "residents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("national_id_hash", sa.String(length=64), nullable=False),
        sa.Column("national_id_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("national_id_masked", sa.String(length=18), nullable=False),
        sa.Column("phone_masked", sa.String(length=20), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("gender", sa.String(length=10), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("home_institution_id", sa.Uuid(), nullable=True),
        sa.Column("key_populations", postgresql.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["home_institution_id"],
            ["institutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("national_id_hash"),
    )
    op.create_index(op.f("ix_residents_community_id"), "residents", ["community_id"], unique=False)
    op.create_index(op.f("ix_residents_name"), "residents", ["name"], unique=False)
    op.create_index(op.f("ix_residents_phone_hash"), "residents", ["phone_hash"], unique=False)
    op.create_table(
        "postings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("host_institution_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_institution_id"],
            ["institutions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_postings_host_institution_id"), "postings", ["host_institution_id"], unique=False
    )
    op.create_index(op.f("ix_postings_practitioner_id"), "postings", ["practitioner_id"], unique=False)
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("lead_practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lead_practitioner_id"],
            ["practitioners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(op.f("ix_teams_community_id"), "teams", ["community_id"], unique=False)
    op.create_index(op.f("ix_teams_institution_id"), "teams", ["institution_id"], unique=False)
    op.create_table(
        "contracts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("key_populations", postgresql.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("previous_contract_id", sa.Uuid(), nullable=True),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("termination_reason", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["previous_contract_id"],
            ["contracts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_contracts_community_id"), "contracts", ["community_id"], unique=False)
    op.create_index(op.f("ix_contracts_resident_id"), "contracts", ["resident_id"], unique=False)
    op.create_index(op.f("ix_contracts_team_id"), "contracts", ["team_id"], unique=False)
    op.create_index(
        "uq_one_active_contract",
        "contracts",
        ["resident_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
        ),
        sa.PrimaryKeyConstraint("team_id", "practitioner_id"),
    )
    op.create_index(
        op.f("ix_team_members_practitioner_id"), "team_members", ["practitioner_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_team_members_practitioner_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_index(
        "uq_one_active_contract", table_name="contracts", postgresql_where=sa.text("status = 'active'")
    )
    op.drop_index(op.f("ix_contracts_team_id"), table_name="contracts")
    op.drop_index(op.f("ix_contracts_resident_id"), table_name="contracts")
    op.drop_index(op.f("ix_contracts_community_id"), table_name="contracts")
    op.drop_table("contracts")
    op.drop_index(op.f("ix_teams_institution_id"), table_name="teams")
    op.drop_index(op.f("ix_teams_community_id"), table_name="teams")
    op.drop_table("teams")
    op.drop_index(op.f("ix_postings_practitioner_id"), table_name="postings")
    op.drop_index(op.f("ix_postings_host_institution_id"), table_name="postings")
    op.drop_table("postings")
    op.drop_index(op.f("ix_residents_phone_hash"), table_name="residents")
    op.drop_index(op.f("ix_residents_name"), table_name="residents")
    op.drop_index(op.f("ix_residents_community_id"), table_name="residents")
    op.drop_table("residents")
    op.drop_index(op.f("ix_practitioners_name"), table_name="practitioners")
    op.drop_index(op.f("ix_practitioners_institution_id"), table_name="practitioners")
    op.drop_table("practitioners")
    op.drop_index(op.f("ix_departments_institution_id"), table_name="departments")
    op.drop_table("departments")
    op.drop_index(op.f("ix_institutions_name"), table_name="institutions")
    op.drop_index(op.f("ix_institutions_community_id"), table_name="institutions")
    op.drop_table("institutions")
    op.drop_index(op.f("ix_communities_county_code"), table_name="communities")
    op.drop_table("communities")
    op.drop_index(op.f("ix_catalogue_entries_county_code"), table_name="catalogue_entries")
    op.drop_table("catalogue_entries")
    op.drop_table("regions")
    op.drop_table("pii_access_log")
    drop_platform_tables()
