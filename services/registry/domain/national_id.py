"""Resident identity numbers (GB 11643-1999, 公民身份号码).

python-stdnum does the check digit and birth date. Its region check also rejects a code that did not
exist in the birth year, which would refuse real elderly residents whose IDs were issued after a
county was renamed; we only require the region code to be a known one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from shared.errors import Invalid


@dataclass(frozen=True)
class NationalId:
    number: str
    birth_date: date
    gender: str  # "male" | "female", from the order code's parity
    region_code: str


def _invalid(en: str, zh: str) -> Invalid:
    return Invalid("invalid-national-id", f"身份证号无效：{zh}", f"Invalid national ID: {en}")


def known_region(code: str) -> bool:
    info = {k for _, props in numdb.get("cn/loc").info(code) for k in props}
    return "county" in info


def parse_national_id(raw: str, today: date | None = None) -> NationalId:
    number = ric.compact(raw)
    if not number.isascii():  # '²' or '٣' pass str.isdigit() but not the check-digit arithmetic
        raise _invalid("must be ASCII digits and X", "须为半角数字和X")
    if len(number) != 18:
        raise _invalid("must be 18 characters", "长度必须为18位")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise _invalid("must be 17 digits and a digit or X", "前17位须为数字，末位为数字或X")
    if ric.calc_check_digit(number) != number[17]:
        raise _invalid("check digit does not match", "校验码不符")
    try:
        birth = ric.get_birth_date(number)
    except ValidationError:
        raise _invalid("birth date is not a real date", "出生日期不存在") from None
    if birth > (today or date.today()) or birth.year < 1900:
        raise _invalid("birth date out of range", "出生日期超出范围")
    if not known_region(number[:6]):
        raise _invalid("unknown region code", "行政区划代码不存在")
    return NationalId(number, birth, "male" if int(number[16]) % 2 else "female", number[:6])


def make_national_id(region_code: str, birth: date, order: int) -> str:
    """Build a valid ID (for synthetic demo residents)."""
    body = f"{region_code}{birth:%Y%m%d}{order:03d}"
    return body + ric.calc_check_digit(body + "0")
