"""Billing tables: insurance years and their parameter versions, budgets, claims, the double-entry
ledger, settlements and disputes, and the read models of registry and referral data built from events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.tables import add_platform_tables


class Base(DeclarativeBase):
    pass


outbox, inbox, idempotency_keys = add_platform_tables(Base.metadata)
TZ = sa.DateTime(timezone=True)
POINTS = sa.Numeric(14, 4)


class ParameterVersion(Base):
    """One version of a county's insurance-year parameters; rows are only ever inserted."""

    __tablename__ = "parameter_versions"
    __table_args__ = (sa.UniqueConstraint("county_code", "year", "version"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    year: Mapped[int]
    version: Mapped[int]
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(TZ)


class InsuranceYear(Base):
    """The year's state: which parameter version its budgets use, and whether it is settled."""

    __tablename__ = "insurance_years"
    county_code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    parameter_version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))  # budgeted | settled
    closed_months: Mapped[int] = mapped_column(default=0)  # months 1..n are closed to new claims


class Budget(Base):
    __tablename__ = "budgets"
    __table_args__ = (sa.UniqueConstraint("community_id", "year"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    year: Mapped[int]
    community_id: Mapped[uuid.UUID]
    parameter_version: Mapped[int]
    covered_residents: Mapped[int]
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    capitation_pool: Mapped[int] = mapped_column(sa.BigInteger)
    dip_budget: Mapped[int] = mapped_column(sa.BigInteger)
    derivation: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TZ)


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        sa.UniqueConstraint("institution_id", "claim_no"),
        sa.Index("ix_claims_period", "county_code", "year", "month"),
        sa.Index("ix_claims_chain", "chain_id", postgresql_where=sa.text("chain_id IS NOT NULL")),
        sa.Index(
            "ix_claims_awaiting",
            "awaiting_referral_id",
            postgresql_where=sa.text("awaiting_referral_id IS NOT NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    claim_no: Mapped[str] = mapped_column(sa.String(64))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    institution_id: Mapped[uuid.UUID]
    institution_community_id: Mapped[uuid.UUID | None]
    tier: Mapped[str] = mapped_column(sa.String(20))
    resident_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID]  # the resident's community: its budget bears the cost
    county_code: Mapped[str] = mapped_column(sa.String(6))
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    month: Mapped[int] = mapped_column(sa.SmallInteger)
    service_date: Mapped[date]
    kind: Mapped[str] = mapped_column(sa.String(12))  # outpatient | inpatient | day_ward
    diagnosis_icd10: Mapped[str] = mapped_column(sa.String(10))
    grassroots_disease: Mapped[bool]
    dip_group: Mapped[str | None] = mapped_column(sa.String(40))
    dip_points: Mapped[Decimal | None] = mapped_column(POINTS)
    weighted_points: Mapped[Decimal | None] = mapped_column(POINTS)
    total_cost: Mapped[int] = mapped_column(sa.BigInteger)
    eligible_cost: Mapped[int] = mapped_column(sa.BigInteger)
    deductible_used: Mapped[int] = mapped_column(sa.BigInteger)
    ratio: Mapped[Decimal] = mapped_column(sa.Numeric(5, 4))
    insurance_share: Mapped[int] = mapped_column(sa.BigInteger)
    referral_id: Mapped[uuid.UUID | None]
    chain_id: Mapped[uuid.UUID | None]
    referred: Mapped[bool]
    # none | up | down: the leg of an up-and-down episode the claim is on (domain/claims.Leg); the
    # deductible met is counted per leg as well as per chain
    leg: Mapped[str] = mapped_column(sa.String(4), server_default="none")
    out_of_community: Mapped[bool]
    received_at: Mapped[datetime] = mapped_column(TZ)
    # provisional: priced as unreferred while billing waits for the referral `awaiting_referral_id`
    # (the one named, or one its chain continues or replaces); final once priced again
    # (domain/repricing.py)
    pricing: Mapped[str] = mapped_column(sa.String(12), server_default="final")
    awaiting_referral_id: Mapped[uuid.UUID | None]
    provisional_share: Mapped[int | None] = mapped_column(sa.BigInteger)  # the share first priced at
    repriced_at: Mapped[datetime | None] = mapped_column(TZ)


class OutOfCountyCare(Base):
    """Care the insurance agency settled outside the county for the county's insured (转外就医, 004 §十七),
    recorded by an insurance officer (one record or a batch from the provincial settlement system) and
    charged to the resident's community budget by the journal `journal_id`. A record number is unique
    per county: the same record again is a duplicate, never a second charge."""

    __tablename__ = "out_of_county_care"
    __table_args__ = (
        sa.UniqueConstraint("county_code", "record_no"),
        sa.Index("ix_out_of_county_care_period", "county_code", "year", "month"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    record_no: Mapped[str] = mapped_column(sa.String(64))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    county_code: Mapped[str] = mapped_column(sa.String(6))
    resident_id: Mapped[uuid.UUID]
    community_id: Mapped[uuid.UUID]  # the resident's community: its budget bears the cost
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    month: Mapped[int] = mapped_column(sa.SmallInteger)
    settled_on: Mapped[date]
    destination_code: Mapped[str | None] = mapped_column(sa.String(40))
    destination_name: Mapped[str] = mapped_column(sa.String(200))
    destination_province: Mapped[str] = mapped_column(sa.String(6))  # 行政区划代码
    destination_city: Mapped[str | None] = mapped_column(sa.String(6))
    diagnosis_icd10: Mapped[str] = mapped_column(sa.String(10))
    referred: Mapped[bool]
    referral_id: Mapped[uuid.UUID | None]
    total_cost: Mapped[int] = mapped_column(sa.BigInteger)
    fund_share: Mapped[int] = mapped_column(sa.BigInteger)
    journal_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("journals.id"))
    recorded_by: Mapped[str] = mapped_column(sa.String(200))
    recorded_at: Mapped[datetime] = mapped_column(TZ)


class Journal(Base):
    """A balanced posting; the unique key makes every run (prepayment of a month, settlement of a year)
    post at most once. Journals and their lines are never updated or deleted."""

    __tablename__ = "journals"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    county_code: Mapped[str] = mapped_column(sa.String(6))
    year: Mapped[int]
    month: Mapped[int | None]
    memo: Mapped[str] = mapped_column(sa.String(500))
    posted_at: Mapped[datetime] = mapped_column(TZ)


class LedgerLine(Base):
    __tablename__ = "ledger_lines"
    __table_args__ = (sa.Index("ix_ledger_lines_account", "account", "community_id"),)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    journal_id: Mapped[int] = mapped_column(sa.ForeignKey("journals.id"), index=True)
    account: Mapped[str] = mapped_column(sa.String(40))
    community_id: Mapped[uuid.UUID | None]
    institution_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # fen; debit > 0, credit < 0


class Settlement(Base):
    __tablename__ = "settlements"
    __table_args__ = (sa.UniqueConstraint("community_id", "year"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    year: Mapped[int]
    community_id: Mapped[uuid.UUID]
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TZ)


class Dispute(Base):
    __tablename__ = "disputes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    community_id: Mapped[uuid.UUID]
    institution_id: Mapped[uuid.UUID]  # who contests
    status: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(10), server_default="charge")  # charge | points
    charged: Mapped[int] = mapped_column(sa.BigInteger)  # fen (for points: at the estimated point value)
    claimed: Mapped[int] = mapped_column(sa.BigInteger)
    decided: Mapped[int | None] = mapped_column(sa.BigInteger)
    charged_points: Mapped[Decimal | None] = mapped_column(POINTS)
    claimed_points: Mapped[Decimal | None] = mapped_column(POINTS)
    decided_points: Mapped[Decimal | None] = mapped_column(POINTS)
    reason: Mapped[str] = mapped_column(sa.String(2000))
    decision_note: Mapped[str | None] = mapped_column(sa.String(2000))
    opened_by: Mapped[str] = mapped_column(sa.String(200))
    decided_by: Mapped[str | None] = mapped_column(sa.String(200))
    opened_at: Mapped[datetime] = mapped_column(TZ)
    decided_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


# --- read models (from registry.* and referral.referrals events) ---


class RmCommunity(Base):
    __tablename__ = "rm_communities"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    lead_institution_id: Mapped[uuid.UUID | None]
    active: Mapped[bool]
    version: Mapped[int]


class RmInstitution(Base):
    __tablename__ = "rm_institutions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(sa.String(20))
    community_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    membership: Mapped[str | None] = mapped_column(sa.String(20))
    # 医保定点: only a designated institution's claims are reimbursed; rows from before billing kept the
    # flag read as designated (as billing treated them) until the institution's next event
    insurance_designated: Mapped[bool] = mapped_column(server_default=sa.true())
    active: Mapped[bool]
    version: Mapped[int]


class RmResident(Base):
    __tablename__ = "rm_residents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID]
    home_institution_id: Mapped[uuid.UUID | None]
    active: Mapped[bool]
    version: Mapped[int]


class RmTeam(Base):
    __tablename__ = "rm_teams"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID]
    institution_id: Mapped[uuid.UUID]
    active: Mapped[bool]
    version: Mapped[int]


class RmContract(Base):
    __tablename__ = "rm_contracts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resident_id: Mapped[uuid.UUID]
    team_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    start_date: Mapped[date]
    end_date: Mapped[date]
    # when the registry terminated it: no month from the termination day on (China time) is paid; None
    # while in force, and on rows kept before billing read it (until the contract's next event)
    terminated_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int]


class RmCatalogueEntry(Base):
    __tablename__ = "rm_catalogue_entries"
    __table_args__ = (sa.Index("ix_rm_catalogue_lookup", "county_code", "icd10"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    catalogue: Mapped[str] = mapped_column(sa.String(20))
    icd10: Mapped[str] = mapped_column(sa.String(10))
    active: Mapped[bool]
    version: Mapped[int]


class RmReferral(Base):
    """Enough of a referral to know a claim was referred and which chain shares one deductible: the chain
    follows `continues_referral_id` (a downward referral bringing the patient home from the upward one of
    the same episode) and `replaces_referral_id` (a re-request) back to its first referral."""

    __tablename__ = "rm_referrals"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resident_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(sa.String(20))
    # up | down; None on a row kept before billing read the direction (until the referral's next event)
    direction: Mapped[str | None] = mapped_column(sa.String(10))
    from_institution_id: Mapped[uuid.UUID]
    to_institution_id: Mapped[uuid.UUID | None]
    replaces_referral_id: Mapped[uuid.UUID | None]
    continues_referral_id: Mapped[uuid.UUID | None]
    version: Mapped[int]
