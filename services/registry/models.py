"""Registry tables (SQLAlchemy ORM). The schema itself comes from the Alembic migrations."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from shared.county_policy import policy_table
from shared.tables import add_platform_tables


class Base(DeclarativeBase):
    pass


outbox, inbox, idempotency_keys = add_platform_tables(Base.metadata)
# the county's registry rules with their history; a county is a region (and goes with it)
county_policies = policy_table(Base.metadata)
county_policies.append_constraint(
    sa.ForeignKeyConstraint(["county_code"], ["regions.code"], name="fk_county_policies_region")
)


class Versioned:
    """Optimistic concurrency: an UPDATE that lost a race affects no row and raises StaleDataError."""

    version: Mapped[int] = mapped_column(nullable=False, default=1)
    active: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Region(Base):
    __tablename__ = "regions"
    code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    level: Mapped[str] = mapped_column(sa.String(20))
    parent_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"))


class Community(Versioned, Base):
    __tablename__ = "communities"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    county_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    lead_institution_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("institutions.id", use_alter=True, name="fk_community_lead")
    )


class Institution(Versioned, Base):
    __tablename__ = "institutions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    tier: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(30))
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"))
    community_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    membership: Mapped[str | None] = mapped_column(sa.String(20))
    insurance_designated: Mapped[bool] = mapped_column(default=False)
    service_centres: Mapped[list[str]] = mapped_column(ARRAY(sa.String(30)), default=list)


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (sa.UniqueConstraint("institution_id", "code"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    institution_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("institutions.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(20))  # clinical | exam
    active: Mapped[bool] = mapped_column(default=True)


class Practitioner(Versioned, Base):
    __tablename__ = "practitioners"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    licence_no: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    profession: Mapped[str] = mapped_column(sa.String(20), default="physician")
    title: Mapped[str] = mapped_column(sa.String(30))
    specialties: Mapped[list[str]] = mapped_column(ARRAY(sa.String(50)), default=list)
    general_practitioner: Mapped[bool] = mapped_column(default=False)
    institution_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("institutions.id"), index=True)


class Posting(Base):
    __tablename__ = "postings"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("practitioners.id"), index=True)
    host_institution_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("institutions.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="resident")
    role: Mapped[str] = mapped_column(sa.String(30), default="physician")
    start_date: Mapped[date]
    end_date: Mapped[date]
    # a rotating posting's days of the week (mon…sun); empty for a resident one
    weekdays: Mapped[list[str]] = mapped_column(ARRAY(sa.String(3)), default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Team(Versioned, Base):
    __tablename__ = "teams"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    community_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("institutions.id"), index=True)
    lead_practitioner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("practitioners.id"))


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("teams.id"), primary_key=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("practitioners.id"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(30))


class Resident(Versioned, Base):
    __tablename__ = "residents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    national_id_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    national_id_sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    phone_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    national_id_masked: Mapped[str] = mapped_column(sa.String(18))
    phone_masked: Mapped[str | None] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    gender: Mapped[str] = mapped_column(sa.String(10))
    birth_date: Mapped[date]
    region_code: Mapped[str] = mapped_column(sa.String(6))
    community_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    home_institution_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("institutions.id"))
    key_populations: Mapped[list[str]] = mapped_column(ARRAY(sa.String(30)), default=list)


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        sa.Index(
            "uq_one_active_contract",
            "resident_id",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    resident_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("residents.id"), index=True)
    team_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    community_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("communities.id"), index=True)
    start_date: Mapped[date]
    end_date: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(20))
    key_populations: Mapped[list[str]] = mapped_column(ARRAY(sa.String(30)), default=list)
    previous_contract_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("contracts.id"))
    terminated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    termination_reason: Mapped[str | None] = mapped_column(sa.String(500))
    version: Mapped[int] = mapped_column(nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CatalogueEntry(Base):
    __tablename__ = "catalogue_entries"
    __table_args__ = (sa.UniqueConstraint("county_code", "catalogue", "tier", "icd10"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    county_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    catalogue: Mapped[str] = mapped_column(sa.String(20))
    tier: Mapped[str] = mapped_column(sa.String(20))
    icd10: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PiiAccess(Base):
    """Append-only audit of every read or lookup of a resident's national ID or phone."""

    __tablename__ = "pii_access_log"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    actor: Mapped[str] = mapped_column(sa.String(200))
    request_id: Mapped[str | None] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(50))
    resident_id: Mapped[uuid.UUID | None]
    outcome: Mapped[str] = mapped_column(sa.String(20))
