"""What makes a referral valid: direction and tier, scope, who may send it, priority, the reasons the
catalogues demand, the upward referral a downward one continues, and response deadlines (seed 000 §5–6,
seed 004 §十一, §十七)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from shared.errors import Conflict, Invalid

from .states import OPEN, Status

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
    """The deadlines in force: each county's own (`settings.ReferralRules.policy()`), else the
    deployment's; defaults from the issue."""

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


def check_direction(
    direction: Direction, origin: Place, destination: Place | None, destination_has_team: bool = False
) -> None:
    """Upward: to a higher tier. Downward: from a county hospital to the grassroots (004 §十一 "至有条件的
    基层医疗卫生机构"): a township or community centre, or a village clinic with a family-doctor team
    (`destination_has_team`) that takes over the follow-up."""
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
    if direction == Direction.DOWN and not (down and origin.tier == "county"):
        raise Invalid(
            "wrong-tier",
            "下转须由县级医院转往基层医疗卫生机构",
            "A downward referral goes from a county hospital to a grassroots institution",
        )
    if direction == Direction.DOWN and destination.tier == "village" and not destination_has_team:
        raise Invalid(
            "village-without-team",
            "该村卫生室没有家庭医生团队，不能接收下转患者",
            "This village clinic has no family-doctor team to take over the follow-up; refer to a "
            "township or community centre, or to a village clinic with a team",
        )


class ContinuedReferral(Protocol):
    """What the way home needs of the upward referral it continues (a row of `models.Referral`)."""

    @property
    def direction(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def resident_id(self) -> uuid.UUID: ...
    @property
    def to_institution_id(self) -> uuid.UUID | None: ...


CONTINUABLE = frozenset({Status.ARRIVED, Status.COMPLETED})


def check_continues(
    direction: Direction, resident_id: uuid.UUID, from_institution_id: uuid.UUID, upward: ContinuedReferral
) -> None:
    """A downward referral continues an upward one of the same episode (上转…下转, one chain for the
    deductible): same resident, the upward one reached its hospital (arrived or completed), and the
    patient goes home from the hospital that treated them — the one the upward referral went to (after
    any forwarding)."""
    if direction != Direction.DOWN:
        raise Invalid(
            "continues-only-downward",
            "只有下转转诊可以接续上转转诊",
            "Only a downward referral continues an upward referral",
        )
    if upward.direction != Direction.UP:
        raise Invalid(
            "continues-not-upward", "所接续的转诊须为上转转诊", "The referral continued must be an upward one"
        )
    if upward.resident_id != resident_id:
        raise Invalid(
            "continues-other-resident",
            "所接续的上转转诊属于另一位居民",
            "The upward referral continued is another resident's",
        )
    if upward.to_institution_id != from_institution_id:
        raise Invalid(
            "continues-other-institution",
            "下转须由上转的接收机构发出",
            "The downward referral must leave from the institution the upward referral went to",
        )
    if upward.status not in CONTINUABLE:
        raise Conflict(
            "continues-not-arrived",
            f"所接续的上转转诊状态为 {upward.status}，患者到院后才能下转接续",
            f"The upward referral is {upward.status}; it is continued once the patient has arrived "
            "(arrived or completed)",
        )


# a downward referral in one of these is the episode's way home: another one continuing the same upward
# referral would be a second chain for one episode (declined, returned, expired, cancelled … ones are not)
WAY_HOME_TAKEN = OPEN | {Status.COMPLETED}


def check_way_home_free(
    continuing: Iterable[tuple[uuid.UUID, str]], replaces_referral_id: uuid.UUID | None
) -> None:
    """One way home per upward referral: refused while another downward referral continuing it (`continuing`:
    id and status) is open, arrived or completed — unless the new one replaces that one (a re-request)."""
    taken = sorted(
        str(i) for i, status in continuing if status in WAY_HOME_TAKEN and i != replaces_referral_id
    )
    if taken:
        raise Conflict(
            "way-home-taken",
            f"该上转转诊已由下转转诊 {', '.join(taken)} 接续；如需更改，请发出替代该下转的新申请",
            f"The upward referral is already continued by downward referral {', '.join(taken)}; "
            "to change it, send a re-request that replaces it (replaces_referral_id)",
        )


def continues_of_replacement(
    named: uuid.UUID | None, replaced_continues: uuid.UUID | None
) -> uuid.UUID | None:
    """A re-request stays in its episode: it inherits the upward referral the replaced one continued, or
    names the same one; naming another is refused. (A replaced referral that continued nothing may gain
    the link: a sender correcting the omission.)"""
    if replaced_continues is None or named is None:
        return named or replaced_continues
    if named != replaced_continues:
        raise Invalid(
            "replaces-other-episode",
            "替代的下转转诊须接续与原下转相同的上转转诊",
            "A re-request continues the same upward referral as the referral it replaces "
            f"({replaced_continues})",
            field="continues_referral_id",
        )
    return named


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
