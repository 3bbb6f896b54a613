"""Postings (下沉帮扶, 004 §七): the lead hospital sends "1+1+1+N" teams to grassroots institutions —
physicians, nurses, and infection-control, CDC, quality-control and supervision staff.

A posted physician (下沉医师) is stationed there (驻扎式), for at least the county's minimum months
(seed: half a year) and holds the county's minimum title or above (seed: attending). The others may be
stationed too, or rotate (巡回式): the same days every week between a start and an end, with no minimum
length. The minimum months and the title are the county's settings (`settings.RegistryRules`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.errors import Invalid

from .practitioners import TITLE_ZH, Profession, Title, add_months, at_least


class PostingKind(StrEnum):
    RESIDENT = "resident"  # 驻扎式帮扶: stationed at the host institution
    ROTATING = "rotating"  # 巡回式帮扶: recurring days each week


class PostingRole(StrEnum):
    """What the posted person does at the host (the seat of the "1+1+1+N" team they fill)."""

    PHYSICIAN = "physician"  # 下沉医师 (Western or TCM)
    NURSING = "nursing"  # 护理
    INFECTION_CONTROL = "infection_control"  # 院感
    PUBLIC_HEALTH = "public_health"  # 疾控
    QUALITY_CONTROL = "quality_control"  # 质控
    SUPERVISION = "supervision"  # 监督


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEK = tuple(Weekday)
# the role a posting has when the request names none: the practitioner's own trade
DEFAULT_ROLE = {
    Profession.PHYSICIAN: PostingRole.PHYSICIAN,
    Profession.NURSE: PostingRole.NURSING,
    Profession.PUBLIC_HEALTH: PostingRole.PUBLIC_HEALTH,
}
# a role only this profession fills; the others any profession may
ROLE_PROFESSION = {PostingRole.PHYSICIAN: Profession.PHYSICIAN, PostingRole.NURSING: Profession.NURSE}


def week_order(days: Iterable[str]) -> list[Weekday]:
    """Distinct days, Monday first (how they are stored and shown)."""
    chosen = {Weekday(d) for d in days}
    return [d for d in WEEK if d in chosen]


@dataclass(frozen=True)
class PostingRules:
    min_months: int  # a stationed posting lasts at least this long
    physician_min_title: Title


@dataclass(frozen=True)
class Staff:
    """The practitioner being posted."""

    profession: Profession
    title: Title
    institution_id: uuid.UUID


@dataclass(frozen=True)
class Term:
    """When a posting holds the practitioner: every day from start to end (stationed), or those weekdays."""

    kind: PostingKind
    start: date
    end: date
    weekdays: frozenset[Weekday] = frozenset()

    def overlaps(self, other: Term) -> bool:
        """Both hold the practitioner on some day: the periods meet, and one is stationed or they share a
        weekday (a nurse may rotate Tue/Thu to one centre and Mon/Wed to another)."""
        first, last = max(self.start, other.start), min(self.end, other.end)
        if first > last:
            return False
        if PostingKind.RESIDENT in (self.kind, other.kind):
            return True
        shared = self.weekdays & other.weekdays
        if (last - first).days >= 6:  # the common stretch holds every day of the week
            return bool(shared)
        days = (first + timedelta(days=i) for i in range((last - first).days + 1))
        return any(WEEK[d.weekday()] in shared for d in days)


def _check_term(term: Term, role: PostingRole, rules: PostingRules) -> None:
    if term.end <= term.start:
        raise Invalid("posting-dates", "派驻结束日期须晚于开始日期", "A posting must end after it starts")
    if term.kind == PostingKind.ROTATING:
        if role == PostingRole.PHYSICIAN:
            raise Invalid(
                "posting-physician-rotating",
                "下沉医师实行驻扎式帮扶，不能巡回",
                "A posted physician is stationed at the host (resident posting), not rotating",
            )
        if not term.weekdays:
            raise Invalid(
                "posting-weekdays",
                "巡回帮扶须写明每周哪几天",
                "A rotating posting names its days of the week",
            )
        return
    if term.weekdays:
        raise Invalid(
            "posting-weekdays",
            "驻扎式帮扶每天在岗，不写每周几天",
            "A resident posting is every day: it names no days of the week",
        )
    if term.end < add_months(term.start, rules.min_months):
        raise Invalid(
            "posting-too-short",
            f"驻扎式派驻时间不得少于{rules.min_months}个月",
            f"A resident posting must last at least {rules.min_months} months",
        )


def check_posting(
    staff: Staff,
    role: PostingRole,
    host_institution_id: uuid.UUID,
    term: Term,
    existing: Iterable[Term],
    rules: PostingRules,
) -> None:
    """A new posting of `staff` to the host, against their `existing` postings and the county's rules."""
    _check_term(term, role, rules)
    needed = ROLE_PROFESSION.get(role)
    if needed is not None and staff.profession != needed:
        raise Invalid(
            "posting-role-profession",
            "派驻岗位与专业类别不符（医师岗须为医师，护理岗须为护士）",
            f"A {role} posting is for a {needed}, not a {staff.profession}",
        )
    if role == PostingRole.PHYSICIAN and not at_least(staff.title, rules.physician_min_title):
        lowest = rules.physician_min_title
        raise Invalid(
            "posting-title",
            f"下沉医师须具备{TITLE_ZH[lowest]}及以上职称",
            f"A posted physician must be {lowest} or above",
        )
    if staff.institution_id == host_institution_id:
        raise Invalid(
            "posting-same-institution", "不能派驻到本机构", "A posting must be to another institution"
        )
    if any(term.overlaps(other) for other in existing):
        raise Invalid("posting-overlap", "派驻时间与已有派驻重叠", "The posting overlaps an existing one")
