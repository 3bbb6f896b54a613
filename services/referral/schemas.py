"""Request and response bodies of the referral API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.text import RequestModel

from .domain.rules import Direction, DownwardReason, GrassrootsReason, Scope, Urgency
from .domain.slots import ResourceType

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Icd10 = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z][0-9]{2}(\.[0-9A-Za-z]{1,4})?$"
    ),
]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class In(RequestModel):
    """A request body (unknown fields refused, every string storable)."""


class FollowUpPlanIn(In):
    interval_days: int = Field(ge=1, le=180)
    visits: int = Field(ge=1, le=52)
    owner_team_id: uuid.UUID | None = Field(
        default=None, description="defaults to the resident's contracted team"
    )


class ReferralIn(In):
    direction: Direction
    scope: Scope = Scope.INTRA_COMMUNITY
    resident_id: uuid.UUID
    from_institution_id: uuid.UUID
    from_practitioner_id: uuid.UUID | None = None
    to_institution_id: uuid.UUID | None = None
    to_department_code: Code | None = None
    destination_name: Text | None = Field(default=None, description="out-of-county hospital")
    diagnosis_icd10: Icd10
    reason: Text
    urgency: Urgency = Urgency.ROUTINE
    clinical_summary: LongText
    result_refs: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50, description="links to results recognised across the community"
    )
    grassroots_reason: GrassrootsReason | None = None
    out_of_county_reason: Text | None = None
    downward_reason: DownwardReason | None = None
    follow_up: FollowUpPlanIn | None = None
    replaces_referral_id: uuid.UUID | None = Field(
        default=None, description="a re-request: the sender's earlier referral it replaces (revoked)"
    )
    continues_referral_id: uuid.UUID | None = Field(
        default=None,
        description="a downward referral: the upward referral of the same episode it brings the patient "
        "home from (same resident, arrived or completed, sent by the hospital it went to)",
    )


class RejectCode(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_INDICATED = "not_indicated"
    WRONG_DEPARTMENT = "wrong_department"
    INCOMPLETE_INFORMATION = "incomplete_information"
    PATIENT_DECLINED = "patient_declined"
    OTHER = "other"


class Versioned(In):
    version: int
    acting_practitioner_id: uuid.UUID | None = Field(
        default=None,
        description="HIS clients only, and required for them: the practitioner of the hospital the step "
        "is taken for (audited beside the client)",
    )


class NoteIn(Versioned):
    note: Text | None = None


class RejectIn(Versioned):
    code: RejectCode
    note: Text | None = None


class ForwardIn(Versioned):
    to_institution_id: uuid.UUID
    to_department_code: Code | None = None
    note: Text | None = None


class ReturnIn(Versioned):
    advice: Text


class ScheduleIn(Versioned):
    appointment_at: AwareDatetime


class CompleteIn(Versioned):
    outcome: Text
    discharge_summary: LongText


class CancelIn(Versioned):
    reason: Text


class ReferralOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    direction: str
    scope: str
    status: str
    urgency: str
    priority: bool
    resident_id: uuid.UUID
    resident_community_id: uuid.UUID
    from_institution_id: uuid.UUID
    from_tier: str
    from_community_id: uuid.UUID | None
    from_practitioner_id: uuid.UUID | None
    to_institution_id: uuid.UUID | None
    to_tier: str | None
    to_community_id: uuid.UUID | None
    to_department_code: str | None
    destination_name: str | None
    approver_institution_id: uuid.UUID | None
    county_code: str | None = Field(description="the referring institution's county, whose rules apply")
    diagnosis_icd10: str
    reason: str
    clinical_summary: str
    result_refs: list[str]
    grassroots_reason: str | None
    out_of_county_reason: str | None
    downward_reason: str | None
    emergency_review_pending: bool
    replaces_referral_id: uuid.UUID | None
    continues_referral_id: uuid.UUID | None
    submitted_at: datetime | None
    response_due_at: datetime | None
    escalated_at: datetime | None
    appointment_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    outcome: str | None
    discharge_summary: str | None
    answer_code: str | None
    answer_note: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class TimelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor: str
    role: str
    institution_id: uuid.UUID | None
    action: str
    from_status: str | None
    to_status: str
    detail: dict[str, Any]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    referral_id: uuid.UUID
    recipient_kind: str
    recipient_id: str
    message_zh: str
    message_en: str
    created_at: datetime


class FollowUpVisitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    referral_id: uuid.UUID
    seq: int
    owner_team_id: uuid.UUID | None
    owner_institution_id: uuid.UUID
    due_date: date
    done_at: datetime | None
    done_by: str | None
    note: str | None
    missed_at: datetime | None


class VisitDoneIn(In):
    note: Text


class SessionIn(In):
    institution_id: uuid.UUID
    department_code: Code
    practitioner_id: uuid.UUID | None = None
    device: Text | None = None
    resource_type: ResourceType
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1, le=10_000)
    family_doctor_share: (
        Annotated[str, StringConstraints(pattern=r"^(0(\.\d{1,4})?|1(\.0{1,4})?)$")] | None
    ) = Field(default=None, description="defaults to the county policy (0.40); never below 0.40")


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    institution_id: uuid.UUID
    department_code: str
    practitioner_id: uuid.UUID | None
    device: str | None
    resource_type: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    family_doctor_share: str
    status: str
    version: int
    free: dict[str, int] = Field(default_factory=dict)
    opens_at: dict[str, datetime] = Field(default_factory=dict)


class BookIn(In):
    session_id: uuid.UUID
    resident_id: uuid.UUID
    referral_id: uuid.UUID | None = None


class HoldOut(BaseModel):
    hold_id: uuid.UUID
    slot_id: uuid.UUID
    session_id: uuid.UUID
    pool: str
    expires_at: datetime


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    slot_id: uuid.UUID
    session_id: uuid.UUID
    resident_id: uuid.UUID
    pool: str
    channel: str
    referral_id: uuid.UUID | None
    status: str
    created_at: datetime


class WaitlistIn(In):
    institution_id: uuid.UUID
    department_code: Code
    resource_type: ResourceType
    resident_id: uuid.UUID
    referral_id: uuid.UUID | None = None
    urgency: Urgency = Urgency.ROUTINE


class WaitlistOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    resident_id: uuid.UUID
    referral_id: uuid.UUID | None
    urgency: str
    status: str
    requested_at: datetime
    offered_slot_id: uuid.UUID | None
    offer_expires_at: datetime | None


class ComplianceDayOut(BaseModel):
    institution_id: uuid.UUID
    department_code: str
    day: date
    published: int
    family_doctor_published: int
    family_doctor_share: str
    booked_by_family_doctors: int
    released: int
    used: int
    compliant: bool
