"""Appointment slots (号源): the family-doctor share of every county session (≥ 40 %, 004 §十), the
priority sub-pool for family-doctor referrals (000 §5), booking windows, holds, release and waitlist
order, and the statuses of sessions, slots (a hold is a slot held), bookings and waitlist entries (the
database stores their values). Plain rules; the database enforces them atomically around these numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from shared.errors import Invalid

FAMILY_DOCTOR_FLOOR = Decimal("0.40")


class Pool(StrEnum):
    PRIORITY = "priority"  # inside the family-doctor share, for accepted priority referrals
    FAMILY_DOCTOR = "family_doctor"
    PUBLIC = "public"


class ResourceType(StrEnum):
    SPECIALIST = "specialist"
    CT = "ct"
    MRI = "mri"
    ULTRASOUND = "ultrasound"
    ENDOSCOPY = "endoscopy"
    DR = "dr"  # digital radiography


class SessionStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"  # stopped by the hospital; its bookings moved or waitlisted


class SlotStatus(StrEnum):
    FREE = "free"
    HELD = "held"  # a hold ($hold or a waitlist offer): kept for one resident until hold_expires_at
    BOOKED = "booked"


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a freed slot is held for the entry until offer_expires_at
    BOOKED = "booked"  # the offered hold was confirmed
    CANCELLED = "cancelled"


class Channel(StrEnum):
    FAMILY_DOCTOR = "family_doctor"
    COORDINATOR = "coordinator"
    RESIDENT = "resident"


@dataclass(frozen=True)
class SlotPolicy:
    family_doctor_share: Decimal = FAMILY_DOCTOR_FLOOR
    priority_share: Decimal = Decimal("0.10")  # of capacity, carved out of the family-doctor share
    public_opens_before: timedelta = timedelta(days=7)
    family_doctor_head_start: timedelta = timedelta(days=5)
    release_before: timedelta = timedelta(hours=24)
    hold_for: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.family_doctor_share < FAMILY_DOCTOR_FLOOR or self.family_doctor_share > 1:
            raise Invalid(
                "share-below-floor",
                "家庭医生号源比例不得低于40%",
                "The family-doctor share cannot be below 40 %",
            )
        if not 0 <= self.priority_share <= self.family_doctor_share:
            raise Invalid(
                "priority-share",
                "优先号源须在家庭医生号源之内",
                "The priority share must fit inside the family-doctor share",
            )


@dataclass(frozen=True)
class PoolSplit:
    priority: int
    family_doctor: int  # excluding the priority slots
    public: int

    @property
    def family_doctor_total(self) -> int:
        return self.priority + self.family_doctor


def split_capacity(capacity: int, policy: SlotPolicy) -> PoolSplit:
    """Family-doctor share rounded up (never below 40 %), priority slots carved out of it."""
    if capacity < 1 or capacity > 10_000:
        raise Invalid("capacity", "号源数量须为1–10000", "Capacity must be 1–10,000")
    fd_total = math.ceil(capacity * policy.family_doctor_share)
    priority = min(fd_total, math.ceil(capacity * policy.priority_share)) if policy.priority_share else 0
    return PoolSplit(priority, fd_total - priority, capacity - fd_total)


def check_session_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise Invalid("session-times", "出诊结束时间须晚于开始时间", "A session must end after it starts")
    if starts_at <= now:
        raise Invalid(
            "session-in-past", "不能发布已开始的出诊", "A session cannot be published after it started"
        )
    if ends_at - starts_at > timedelta(hours=24):
        raise Invalid("session-too-long", "单次出诊不超过24小时", "A session lasts at most 24 hours")


def opens_at(pool: Pool, starts_at: datetime, policy: SlotPolicy) -> datetime:
    public = starts_at - policy.public_opens_before
    return public if pool == Pool.PUBLIC else public - policy.family_doctor_head_start


def pools_for(channel: Channel, priority_referral: bool) -> list[Pool]:
    """Which pools a booking channel may take from, in the order it tries them."""
    if channel == Channel.RESIDENT:
        return [Pool.PUBLIC]
    if channel == Channel.FAMILY_DOCTOR:
        return [Pool.FAMILY_DOCTOR]
    return (
        [Pool.PRIORITY, Pool.FAMILY_DOCTOR, Pool.PUBLIC]
        if priority_referral
        else [Pool.PUBLIC, Pool.FAMILY_DOCTOR]
    )


def open_pools(pools: list[Pool], starts_at: datetime, now: datetime, policy: SlotPolicy) -> list[Pool]:
    return [p for p in pools if opens_at(p, starts_at, policy) <= now]


def compliant(published_family_doctor: int, published_total: int) -> bool:
    return (
        published_total == 0
        or Decimal(published_family_doctor) / Decimal(published_total) >= FAMILY_DOCTOR_FLOOR
    )
