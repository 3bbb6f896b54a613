"""Practitioners: their profession (physician, nurse, public health) and the title ladder of each.

Postings (下沉/派驻) are `postings.py`."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.errors import Invalid


class Profession(StrEnum):
    PHYSICIAN = "physician"  # 医师: clinical and TCM physicians, village doctors
    NURSE = "nurse"  # 护理
    PUBLIC_HEALTH = "public_health"  # 公共卫生 / 疾控 (CDC) staff


class Title(StrEnum):
    """Professional titles (职称), two ladders; their Chinese names are `TITLE_ZH`."""

    VILLAGE_DOCTOR = "village_doctor"
    ASSISTANT = "assistant"
    RESIDENT = "resident"
    ATTENDING = "attending"
    ASSOCIATE_CHIEF = "associate_chief"
    CHIEF = "chief"
    NURSE = "nurse"
    SENIOR_NURSE = "senior_nurse"
    NURSE_IN_CHARGE = "nurse_in_charge"
    ASSOCIATE_CHIEF_NURSE = "associate_chief_nurse"
    CHIEF_NURSE = "chief_nurse"


PHYSICIAN_LADDER = (
    Title.VILLAGE_DOCTOR,
    Title.ASSISTANT,
    Title.RESIDENT,
    Title.ATTENDING,
    Title.ASSOCIATE_CHIEF,
    Title.CHIEF,
)
NURSE_LADDER = (
    Title.NURSE,
    Title.SENIOR_NURSE,
    Title.NURSE_IN_CHARGE,
    Title.ASSOCIATE_CHIEF_NURSE,
    Title.CHIEF_NURSE,
)
# each profession's titles, junior first
LADDERS: dict[Profession, tuple[Title, ...]] = {
    Profession.PHYSICIAN: PHYSICIAN_LADDER,
    Profession.NURSE: NURSE_LADDER,
    Profession.PUBLIC_HEALTH: PHYSICIAN_LADDER[1:],
}


TITLE_ZH = {
    Title.VILLAGE_DOCTOR: "乡村医生",
    Title.ASSISTANT: "执业助理医师",
    Title.RESIDENT: "住院医师",
    Title.ATTENDING: "主治医师",
    Title.ASSOCIATE_CHIEF: "副主任医师",
    Title.CHIEF: "主任医师",
    Title.NURSE: "护士",
    Title.SENIOR_NURSE: "护师",
    Title.NURSE_IN_CHARGE: "主管护师",
    Title.ASSOCIATE_CHIEF_NURSE: "副主任护师",
    Title.CHIEF_NURSE: "主任护师",
}


def at_least(title: Title, lowest: Title) -> bool:
    """On the physicians' ladder, `title` is `lowest` or above (a title off that ladder never is)."""
    if title not in PHYSICIAN_LADDER:
        return False
    return PHYSICIAN_LADDER.index(title) >= PHYSICIAN_LADDER.index(lowest)


def check_practitioner(profession: Profession, title: Title, general_practitioner: bool) -> None:
    """A title belongs to the practitioner's profession; only a physician is a general practitioner."""
    if title not in LADDERS[profession]:
        raise Invalid(
            "title-profession",
            "职称与专业类别不符（医师、护理、公共卫生各有其职称序列）",
            f"title {title} is not on the {profession} ladder: "
            + ", ".join(t.value for t in LADDERS[profession]),
        )
    if general_practitioner and profession != Profession.PHYSICIAN:
        raise Invalid(
            "gp-not-physician", "全科医生须为医师", "Only a physician can be a general practitioner"
        )


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
