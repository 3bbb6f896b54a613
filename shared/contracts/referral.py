"""What the referral service publishes: referral snapshots after each step (`referral.referrals`, keyed by
referral id, read by billing), notifications (`referral.notifications`), and the slot events
(`referral.sessions`, `referral.bookings`).

Personal data: version 2 of a referral keeps the workflow (who sends whom where, how urgent, which
deadlines, the coded diagnosis and reasons) and drops the free text — reason, clinical and discharge
summaries, outcome, answer note, result links, the out-of-county destination and reason — and, from the
step, the actor's identity and the free-text notes; that a discharge summary came back is kept as a flag.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import field_validator

from .base import REGISTRY, Contract, EventData

SOURCE = "/referral"
REFERRAL_ACTIONS = (
    "submitted",
    "pending_approval",
    "approve",
    "deny",
    "accept",
    "reject",
    "forward",
    "return",
    "schedule",
    "unschedule",
    "reschedule",
    "arrive",
    "complete",
    "no_show",
    "cancel",
    "expire",
    "revoke",
    "escalate",
    "review",
    "follow_up_visit",
    "follow_up_missed",
)
# what a step's detail may carry on the topic: codes, ids, dates and flags, never free text
STEP_DETAIL_KEYS = frozenset(
    {
        "acting_practitioner_id",  # the practitioner a hospital's HIS client acted for
        "grassroots_reason",
        "code",
        "appointment_at",
        "previous_appointment_at",
        "cause",
        "from_institution",
        "from_department",
        "to_institution",
        "to_department",
        "booking_id",
        "session_id",
        "pool",
        "visit",
        "due_date",
        "due",
        "late",
        "auto",
    }
)


class ReferralV1(EventData):
    """As the referral API answered (it was the API's response model), plus the step as `event`:
    action, from_status, actor, role and the step's detail, flat."""

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
    diagnosis_icd10: str
    reason: str
    clinical_summary: str
    result_refs: list[str]
    grassroots_reason: str | None
    out_of_county_reason: str | None
    downward_reason: str | None
    emergency_review_pending: bool
    replaces_referral_id: uuid.UUID | None
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
    event: dict[str, Any] | None = None


Scalar = str | int | bool | None


class ReferralStepV2(EventData):
    """The step that produced the snapshot: the action, the status before, the actor's role, and the
    step's structured detail (`STEP_DETAIL_KEYS`)."""

    action: str
    from_status: str | None
    role: str
    detail: dict[str, Scalar]

    @field_validator("detail")
    @classmethod
    def _structured_only(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        extra = set(value) - STEP_DETAIL_KEYS
        if extra:
            raise ValueError(f"step detail keys {sorted(extra)} are not in the contract (STEP_DETAIL_KEYS)")
        return value


class ReferralV2(EventData):
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
    approver_institution_id: uuid.UUID | None
    diagnosis_icd10: str
    grassroots_reason: str | None
    downward_reason: str | None
    emergency_review_pending: bool
    replaces_referral_id: uuid.UUID | None
    submitted_at: datetime | None
    response_due_at: datetime | None
    escalated_at: datetime | None
    appointment_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    discharge_summary_provided: bool
    answer_code: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    event: ReferralStepV2


V1_DROPPED = {
    "destination_name",
    "reason",
    "clinical_summary",
    "result_refs",
    "out_of_county_reason",
    "outcome",
    "discharge_summary",
    "answer_note",
    "event",
}


def referral_v1_to_v2(old: ReferralV1) -> ReferralV2:
    step = dict(old.event or {})
    action = str(step.pop("action", "unknown"))
    from_status = step.pop("from_status", None)
    role = str(step.pop("role", ""))
    step.pop("actor", None)
    return ReferralV2.model_validate(
        {
            **old.model_dump(exclude=V1_DROPPED),
            "discharge_summary_provided": old.discharge_summary is not None,
            "event": ReferralStepV2(
                action=action,
                from_status=from_status,
                role=role,
                detail={k: v for k, v in step.items() if k in STEP_DETAIL_KEYS},
            ),
        }
    )


class ReferralV3(ReferralV2):
    """Version 2 plus the upward referral a downward one continues (the way home of one episode: billing
    counts the deductible once over the whole up-and-down chain)."""

    continues_referral_id: uuid.UUID | None


def referral_v2_to_v3(old: ReferralV2) -> ReferralV3:
    return ReferralV3.model_validate({**old.model_dump(), "continues_referral_id": None})


class NotificationV1(EventData):
    id: uuid.UUID
    referral_id: uuid.UUID
    recipient_kind: str
    recipient_id: str
    message_zh: str
    message_en: str
    created_at: datetime


class SessionV1(EventData):
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
    free: dict[str, int]
    opens_at: dict[str, datetime]


class SessionCancelledV1(SessionV1):
    bookings: int


class SessionReleasedV1(EventData):
    """Unbooked family-doctor slots of a session released to the public pool at the cut-off."""

    session_id: uuid.UUID
    released: int
    at: datetime


class BookingV1(EventData):
    id: uuid.UUID
    slot_id: uuid.UUID
    session_id: uuid.UUID
    resident_id: uuid.UUID
    pool: str
    channel: str
    referral_id: uuid.UUID | None
    status: str
    created_at: datetime


class BookingBookedV1(BookingV1):
    institution_id: uuid.UUID
    department_code: str
    starts_at: datetime


class BookingCancelledV1(BookingV1):
    """Cancelled by its holder (the booking alone), or with its session (the four keys below are set)."""

    reason: str | None = None
    rebooked_as: uuid.UUID | None = None
    rebooked_session: uuid.UUID | None = None
    waitlisted: bool | None = None


class WaitlistOfferedV1(EventData):
    id: uuid.UUID
    resident_id: uuid.UUID
    referral_id: uuid.UUID | None
    urgency: str
    status: str
    requested_at: datetime
    offered_slot_id: uuid.UUID | None
    offer_expires_at: datetime | None
    hold_id: uuid.UUID
    session_id: uuid.UUID


Referral = ReferralV3
ReferralStep = ReferralStepV2
Notification = NotificationV1
Session = SessionV1
SessionCancelled = SessionCancelledV1
SessionReleased = SessionReleasedV1
Booking = BookingV1
BookingBooked = BookingBookedV1
BookingCancelled = BookingCancelledV1
WaitlistOffered = WaitlistOfferedV1

REFERRALS = Contract(
    "referral.referrals",
    frozenset(f"referral.{a}" for a in REFERRAL_ACTIONS),
    (ReferralV1, ReferralV2, ReferralV3),
    (referral_v1_to_v2, referral_v2_to_v3),
)
NOTIFICATIONS = Contract("referral.notifications", frozenset({"referral.notification"}), (NotificationV1,))
SESSION_PUBLISHED = Contract("referral.sessions", frozenset({"referral.session.published"}), (SessionV1,))
SESSION_CANCELLED = Contract(
    "referral.sessions", frozenset({"referral.session.cancelled"}), (SessionCancelledV1,)
)
SESSION_RELEASED = Contract(
    "referral.sessions", frozenset({"referral.session.released"}), (SessionReleasedV1,)
)
BOOKING_BOOKED = Contract("referral.bookings", frozenset({"referral.booking.booked"}), (BookingBookedV1,))
BOOKING_CANCELLED = Contract(
    "referral.bookings", frozenset({"referral.booking.cancelled"}), (BookingCancelledV1,)
)
BOOKING_NO_SHOW = Contract("referral.bookings", frozenset({"referral.booking.no_show"}), (BookingV1,))
WAITLIST_OFFERED = Contract(
    "referral.bookings", frozenset({"referral.waitlist.offered"}), (WaitlistOfferedV1,)
)

REGISTRY.add(
    REFERRALS,
    NOTIFICATIONS,
    SESSION_PUBLISHED,
    SESSION_CANCELLED,
    SESSION_RELEASED,
    BOOKING_BOOKED,
    BOOKING_CANCELLED,
    BOOKING_NO_SHOW,
    WAITLIST_OFFERED,
)
