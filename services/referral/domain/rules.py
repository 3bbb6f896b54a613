"""What makes a referral valid: direction and tier, scope, who may send it, priority, the reasons the
catalogues demand, and response deadlines (seed 000 §5–6, seed 004 §十一, §十七)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.errors import Invalid

TIER_RANK = {"village": 0, "township": 1, "community": 1, "county": 2}


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class Scope(StrEnum):
    INTRA_COMMUNITY = "intra_community"
    INTER_COMMUNITY = "inter_community"
    OUT_OF_COUNTY = "out_of_county"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


class GrassrootsReason(StrEnum):
    """Why a disease on the grassroots catalogue still goes up (基层首诊例外)."""

    EXCEEDS_CAPACITY = "exceeds_capacity"
    DIAGNOSIS_UNCLEAR = "diagnosis_unclear"
    NEEDS_EQUIPMENT = "needs_equipment"
    COMPLICATIONS = "complications"
    NO_IMPROVEMENT = "no_improvement"


class DownwardReason(StrEnum):
    ACUTE_RECOVERY = "acute_recovery"  # 急性期后恢复
    POST_OPERATIVE = "post_operative"  # 术后康复
    STABLE_CRITICAL = "stable_critical"  # 危重症稳定期
    CHRONIC_MANAGEMENT = "chronic_management"


@dataclass(frozen=True)
class Policy:
    """Configurable per county; defaults from the issue."""

    emergency_response: timedelta = timedelta(minutes=30)
    urgent_response: timedelta = timedelta(hours=4)
    routine_response: timedelta = timedelta(hours=48)
    expire_after: timedelta = timedelta(days=7)  # unanswered this long after submission: expired
    no_show_after: timedelta = timedelta(days=7)  # scheduled, no arrival this long after the appointment
    follow_up_grace_days: int = 3

    def response_due(self, urgency: Urgency, submitted_at: datetime) -> datetime:
        return (
            submitted_at
            + {
                Urgency.EMERGENCY: self.emergency_response,
                Urgency.URGENT: self.urgent_response,
                Urgency.ROUTINE: self.routine_response,
            }[urgency]
        )


@dataclass(frozen=True)
class Place:
    institution_id: uuid.UUID
    tier: str
    community_id: uuid.UUID | None
    county_code: str


def check_direction(direction: Direction, origin: Place, destination: Place | None) -> None:
    if destination is None:
        if direction != Direction.UP:
            raise Invalid("out-of-county-is-upward", "县外转诊只能上转", "Out-of-county referrals go upward")
        return
    up = TIER_RANK[destination.tier] > TIER_RANK[origin.tier]
    down = TIER_RANK[destination.tier] < TIER_RANK[origin.tier]
    if direction == Direction.UP and not up:
        raise Invalid(
            "wrong-tier",
            "上转须转往更高层级的机构",
            f"An upward referral must go to a higher tier ({origin.tier} → {destination.tier})",
        )
    if direction == Direction.DOWN and not (
        down and origin.tier == "county" and destination.tier != "village"
    ):
        raise Invalid(
            "wrong-tier",
            "下转须由县级医院转往乡镇卫生院或社区卫生服务中心",
            "A downward referral goes from a county hospital to a township or community centre",
        )


def classify_scope(origin: Place, destination: Place | None, resident_community: uuid.UUID) -> Scope:
    if destination is None:
        return Scope.OUT_OF_COUNTY
    if destination.county_code != origin.county_code:
        return Scope.OUT_OF_COUNTY
    if origin.community_id == destination.community_id == resident_community:
        return Scope.INTRA_COMMUNITY
    return Scope.INTER_COMMUNITY


def check_scope(declared: Scope, actual: Scope) -> None:
    if declared != actual:
        raise Invalid(
            "scope-mismatch",
            f"此转诊属于 {actual}，须按该流程提交（申报为 {declared}）",
            f"This referral is {actual}; submit it through that flow (declared {declared})",
        )


def is_priority(
    direction: Direction, practitioner_id: uuid.UUID | None, contracted_team_members: set[uuid.UUID]
) -> bool:
    """An upward referral by a member of the resident's contracted family-doctor team (000 §5)."""
    return (
        direction == Direction.UP
        and practitioner_id is not None
        and practitioner_id in contracted_team_members
    )


def check_reasons(
    direction: Direction,
    scope: Scope,
    on_grassroots_catalogue: bool,
    on_first_in_county: bool,
    grassroots_reason: str | None,
    out_of_county_reason: str | None,
) -> None:
    if direction == Direction.UP and on_grassroots_catalogue and not grassroots_reason:
        raise Invalid(
            "grassroots-reason-required",
            "基层首诊病种上转须说明原因",
            "This disease is on the grassroots catalogue: give grassroots_reason for referring up",
        )
    if scope == Scope.OUT_OF_COUNTY and on_first_in_county and not (out_of_county_reason or "").strip():
        raise Invalid(
            "out-of-county-reason-required",
            "县域内首诊病种转往县外须说明理由",
            "This disease is on the first-in-county catalogue: give out_of_county_reason",
        )


def needs_approval(scope: Scope, urgency: Urgency) -> bool:
    """Out-of-county referrals need the lead hospital's approval; emergencies are reviewed afterwards."""
    return scope == Scope.OUT_OF_COUNTY and urgency != Urgency.EMERGENCY
