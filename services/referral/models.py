"""Referral tables: referrals with their timeline, notifications and follow-ups, and the read models of
registry data built from registry events (the service never reads the registry's database)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.county_policy import policy_table
from shared.tables import add_platform_tables

from .domain.slots import SessionStatus, SlotStatus


class Base(DeclarativeBase):
    pass


outbox, inbox, idempotency_keys = add_platform_tables(Base.metadata)
county_policies = policy_table(Base.metadata)
TZ = sa.DateTime(timezone=True)


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        sa.Index("ix_referrals_inbox", "to_institution_id", "status"),
        sa.Index("ix_referrals_outbox", "from_institution_id", "created_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    direction: Mapped[str] = mapped_column(sa.String(10))
    scope: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    urgency: Mapped[str] = mapped_column(sa.String(10))
    priority: Mapped[bool]
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    resident_community_id: Mapped[uuid.UUID]
    from_institution_id: Mapped[uuid.UUID]
    from_tier: Mapped[str] = mapped_column(sa.String(20))
    from_community_id: Mapped[uuid.UUID | None]
    from_practitioner_id: Mapped[uuid.UUID | None]
    to_institution_id: Mapped[uuid.UUID | None]
    to_tier: Mapped[str | None] = mapped_column(sa.String(20))
    to_community_id: Mapped[uuid.UUID | None]
    to_department_code: Mapped[str | None] = mapped_column(sa.String(40))
    destination_name: Mapped[str | None] = mapped_column(sa.String(200))
    approver_institution_id: Mapped[uuid.UUID | None]
    # the referring institution's county, whose rules set the deadlines (null: an old referral whose origin
    # was not in the read model when 0005 filled it in; it runs on the deployment's rules)
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    diagnosis_icd10: Mapped[str] = mapped_column(sa.String(10))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    clinical_summary: Mapped[str] = mapped_column(sa.Text)
    result_refs: Mapped[list[str]] = mapped_column(ARRAY(sa.String(200)), default=list)
    grassroots_reason: Mapped[str | None] = mapped_column(sa.String(40))
    out_of_county_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    downward_reason: Mapped[str | None] = mapped_column(sa.String(40))
    emergency_review_pending: Mapped[bool] = mapped_column(default=False)
    replaces_referral_id: Mapped[uuid.UUID | None]
    # a downward referral: the upward referral of the same episode it brings the patient home from
    continues_referral_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("referrals.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(TZ)
    response_due_at: Mapped[datetime | None] = mapped_column(TZ)
    escalated_at: Mapped[datetime | None] = mapped_column(TZ)
    appointment_at: Mapped[datetime | None] = mapped_column(TZ)
    arrived_at: Mapped[datetime | None] = mapped_column(TZ)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    outcome: Mapped[str | None] = mapped_column(sa.String(200))
    discharge_summary: Mapped[str | None] = mapped_column(sa.Text)
    answer_code: Mapped[str | None] = mapped_column(sa.String(40))
    answer_note: Mapped[str | None] = mapped_column(sa.String(2000))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class TimelineEntry(Base):
    __tablename__ = "referral_timeline"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), index=True)
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    institution_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(sa.String(40))
    from_status: Mapped[str | None] = mapped_column(sa.String(20))
    to_status: Mapped[str] = mapped_column(sa.String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Notification(Base):
    """What the referrer and the resident are told; a messaging adapter sends them from the events."""

    __tablename__ = "notifications"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), index=True)
    recipient_kind: Mapped[str] = mapped_column(sa.String(20))  # referrer | resident | receiver
    recipient_id: Mapped[str] = mapped_column(sa.String(100))
    message_zh: Mapped[str] = mapped_column(sa.String(500))
    message_en: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(TZ)


class FollowUpVisit(Base):
    __tablename__ = "follow_up_visits"
    __table_args__ = (sa.UniqueConstraint("referral_id", "seq"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), index=True)
    seq: Mapped[int]
    owner_team_id: Mapped[uuid.UUID | None]
    owner_institution_id: Mapped[uuid.UUID]
    due_date: Mapped[date]
    done_at: Mapped[datetime | None] = mapped_column(TZ)
    done_by: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(2000))
    missed_at: Mapped[datetime | None] = mapped_column(TZ)


# ---- read models of registry data (upserted from registry events, newest version wins) ----


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
    name: Mapped[str] = mapped_column(sa.String(200))
    tier: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(30))
    region_code: Mapped[str] = mapped_column(sa.String(6))
    community_id: Mapped[uuid.UUID | None]
    membership: Mapped[str | None] = mapped_column(sa.String(20))
    departments: Mapped[list[str]] = mapped_column(ARRAY(sa.String(40)), default=list)
    active: Mapped[bool]
    version: Mapped[int]


class RmPractitioner(Base):
    __tablename__ = "rm_practitioners"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    institution_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(sa.String(30))
    # physician | nurse | public_health (practitioner event v3; older versions knew only physicians)
    profession: Mapped[str] = mapped_column(sa.String(20), server_default="physician")
    active: Mapped[bool]
    version: Mapped[int]


class RmTeam(Base):
    __tablename__ = "rm_teams"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID]
    institution_id: Mapped[uuid.UUID]
    members: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(sa.Uuid), default=list)
    active: Mapped[bool]
    version: Mapped[int]


class RmResident(Base):
    __tablename__ = "rm_residents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    community_id: Mapped[uuid.UUID]
    home_institution_id: Mapped[uuid.UUID | None]
    birth_date: Mapped[date]
    active: Mapped[bool]
    version: Mapped[int]


class RmContract(Base):
    __tablename__ = "rm_contracts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    team_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(sa.String(20))
    start_date: Mapped[date]
    end_date: Mapped[date]
    version: Mapped[int]


class RmCatalogueEntry(Base):
    __tablename__ = "rm_catalogue_entries"
    __table_args__ = (sa.Index("ix_rm_catalogue_lookup", "county_code", "icd10"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    catalogue: Mapped[str] = mapped_column(sa.String(20))
    tier: Mapped[str] = mapped_column(sa.String(20))
    icd10: Mapped[str] = mapped_column(sa.String(10))
    active: Mapped[bool]
    version: Mapped[int]


READ_MODELS = (RmCommunity, RmInstitution, RmPractitioner, RmTeam, RmResident, RmContract, RmCatalogueEntry)


# ---- appointment slots (号源) ----


class Session(Base):
    """A published clinic or exam session of a county hospital, split into pools of slots."""

    __tablename__ = "sessions"
    __table_args__ = (sa.Index("ix_sessions_find", "institution_id", "department_code", "starts_at"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    institution_id: Mapped[uuid.UUID]
    department_code: Mapped[str] = mapped_column(sa.String(40))
    practitioner_id: Mapped[uuid.UUID | None]
    device: Mapped[str | None] = mapped_column(sa.String(100))
    resource_type: Mapped[str] = mapped_column(sa.String(20))
    starts_at: Mapped[datetime] = mapped_column(TZ)
    ends_at: Mapped[datetime] = mapped_column(TZ)
    capacity: Mapped[int]
    family_doctor_share: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(20), default=SessionStatus.OPEN.value)
    published_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Slot(Base):
    __tablename__ = "slots"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "slot_no"),
        sa.Index("ix_slots_free", "session_id", "pool", "slot_no"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sessions.id"))
    slot_no: Mapped[int]
    pool: Mapped[str] = mapped_column(sa.String(20))  # where it can be booked now
    published_pool: Mapped[str] = mapped_column(sa.String(20))  # where it was published (compliance)
    status: Mapped[str] = mapped_column(sa.String(10), default=SlotStatus.FREE.value)
    hold_id: Mapped[uuid.UUID | None]
    hold_expires_at: Mapped[datetime | None] = mapped_column(TZ)
    hold_for_resident_id: Mapped[uuid.UUID | None]
    hold_referral_id: Mapped[uuid.UUID | None]
    released_at: Mapped[datetime | None] = mapped_column(TZ)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.Index("uq_booking_slot", "slot_id", unique=True, postgresql_where=sa.text("status = 'booked'")),
        sa.Index(
            "uq_booking_resident_session",
            "session_id",
            "resident_id",
            unique=True,
            postgresql_where=sa.text("status = 'booked'"),
        ),
        # a referral has one appointment: at most one live booking (a rebooking frees the old one first)
        sa.Index(
            "uq_booking_referral",
            "referral_id",
            unique=True,
            postgresql_where=sa.text("status = 'booked' AND referral_id IS NOT NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slot_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("slots.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("sessions.id"), index=True)
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    pool: Mapped[str] = mapped_column(sa.String(20))
    channel: Mapped[str] = mapped_column(sa.String(20))
    referral_id: Mapped[uuid.UUID | None]
    booked_by: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20))  # booked | cancelled | attended | no_show
    created_at: Mapped[datetime] = mapped_column(TZ)
    cancelled_at: Mapped[datetime | None] = mapped_column(TZ)


class WaitlistEntry(Base):
    __tablename__ = "waitlist"
    __table_args__ = (
        sa.Index("ix_waitlist_queue", "institution_id", "department_code", "resource_type", "status"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    institution_id: Mapped[uuid.UUID]
    department_code: Mapped[str] = mapped_column(sa.String(40))
    resource_type: Mapped[str] = mapped_column(sa.String(20))
    resident_id: Mapped[uuid.UUID]
    referral_id: Mapped[uuid.UUID | None]
    channel: Mapped[str] = mapped_column(sa.String(20))
    pools: Mapped[list[str]] = mapped_column(ARRAY(sa.String(20)))
    urgency: Mapped[str] = mapped_column(sa.String(10))
    urgency_rank: Mapped[int]
    requested_by: Mapped[str] = mapped_column(sa.String(200))
    requested_at: Mapped[datetime] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(sa.String(20))  # waiting | offered | booked | cancelled
    offered_slot_id: Mapped[uuid.UUID | None]
    offer_expires_at: Mapped[datetime | None] = mapped_column(TZ)
