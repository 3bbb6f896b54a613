"""Family-doctor contracts (签约): one active per resident, a year long, renewed yearly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.errors import Conflict, Invalid

from .practitioners import add_months

RENEWAL_WINDOW_DAYS = 60


class ContractStatus(StrEnum):
    ACTIVE = "active"
    RENEWED = "renewed"
    TERMINATED = "terminated"


class KeyPopulation(StrEnum):
    """重点人群 flags recorded on a resident (002 §21 names the groups); age groups are derived from the
    birth date."""

    ELDERLY = "elderly"  # 65+, derived
    CHILD = "child"  # 0-6, derived
    PREGNANT_POSTPARTUM = "pregnant_postpartum"
    DISABLED = "disabled"
    CHRONIC_DISEASE = "chronic_disease"
    SEVERE_MENTAL = "severe_mental"
    REGISTERED_POOR = "registered_poor"
    # 计划生育特别扶助家庭: the only child died or is disabled (the state's special assistance families)
    FAMILY_PLANNING_SPECIAL = "family_planning_special"


RECORDED_FLAGS = frozenset(KeyPopulation) - {KeyPopulation.ELDERLY, KeyPopulation.CHILD}


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def key_populations(birth: date, flags: frozenset[str] | set[str], on: date) -> set[str]:
    groups = set(flags)
    age = age_on(birth, on)
    if age >= 65:
        groups.add(KeyPopulation.ELDERLY)
    if age <= 6:
        groups.add(KeyPopulation.CHILD)
    return groups


@dataclass(frozen=True)
class ContractTerm:
    start: date
    end: date


def contract_term(start: date) -> ContractTerm:
    """A contract runs one year: start to the day before the anniversary."""
    return ContractTerm(start, add_months(start, 12) - timedelta(days=1))


def check_new_contract(
    has_active: bool, resident_active: bool, team_active: bool, same_community: bool
) -> None:
    if not resident_active:
        raise Invalid("resident-inactive", "居民档案已停用", "The resident is deactivated")
    if not team_active:
        raise Invalid("team-inactive", "家庭医生团队已停用", "The family-doctor team is deactivated")
    if not same_community:
        raise Invalid(
            "team-other-community",
            "只能与本医共体的家庭医生团队签约",
            "A resident can only sign with a team of their own community",
        )
    if has_active:
        raise Conflict(
            "contract-already-active",
            "该居民已有有效签约",
            "The resident already has an active contract",
        )


def renewal_term(status: ContractStatus, current_end: date, today: date) -> ContractTerm:
    if status != ContractStatus.ACTIVE:
        raise Conflict("contract-not-active", "仅有效签约可续约", "Only an active contract can be renewed")
    if (current_end - today).days > RENEWAL_WINDOW_DAYS:
        raise Conflict(
            "renewal-too-early",
            f"到期前{RENEWAL_WINDOW_DAYS}天内方可续约",
            f"A contract can be renewed only within {RENEWAL_WINDOW_DAYS} days of its end",
        )
    return contract_term(max(current_end + timedelta(days=1), today))


def check_termination(status: ContractStatus, reason: str) -> None:
    if status != ContractStatus.ACTIVE:
        raise Conflict("contract-not-active", "仅有效签约可解约", "Only an active contract can be terminated")
    if not reason.strip():
        raise Invalid("termination-reason", "解约须说明原因", "A termination needs a reason")
