"""Practitioners and deployed-doctor postings (下沉/派驻): at least six months, attending or above."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.errors import Invalid

MIN_POSTING_MONTHS = 6


class Title(StrEnum):
    VILLAGE_DOCTOR = "village_doctor"  # 乡村医生
    ASSISTANT = "assistant"  # 执业助理医师
    RESIDENT = "resident"  # 住院医师
    ATTENDING = "attending"  # 主治医师
    ASSOCIATE_CHIEF = "associate_chief"  # 副主任医师
    CHIEF = "chief"  # 主任医师


SENIORITY = {t: i for i, t in enumerate(Title)}


def add_months(d: date, months: int) -> date:
    month_index = d.month - 1 + months
    year, month = d.year + month_index // 12, month_index % 12 + 1
    days = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return date(year, month, min(d.day, days))


def check_posting(
    title: Title,
    home_institution: object,
    host_institution: object,
    start: date,
    end: date,
    existing: list[tuple[date, date]],
) -> None:
    if end <= start:
        raise Invalid("posting-dates", "派驻结束日期须晚于开始日期", "A posting must end after it starts")
    if end < add_months(start, MIN_POSTING_MONTHS):
        raise Invalid("posting-too-short", "派驻时间不得少于6个月", "A posting must last at least 6 months")
    if SENIORITY[title] < SENIORITY[Title.ATTENDING]:
        raise Invalid(
            "posting-title",
            "派驻医师须具备主治医师及以上职称",
            "A deployed doctor must be attending-level or above",
        )
    if home_institution == host_institution:
        raise Invalid(
            "posting-same-institution", "不能派驻到本机构", "A posting must be to another institution"
        )
    for other_start, other_end in existing:
        if start <= other_end and other_start <= end:
            raise Invalid("posting-overlap", "派驻时间与已有派驻重叠", "The posting overlaps an existing one")
