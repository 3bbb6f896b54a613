from datetime import date

import pytest

from services.registry.domain.national_id import make_national_id, parse_national_id
from shared.errors import Invalid


def test_valid_id_gives_birth_date_gender_region() -> None:
    nid = make_national_id("411081", date(1950, 5, 1), 13)
    parsed = parse_national_id(nid)
    assert parsed.birth_date == date(1950, 5, 1)
    assert parsed.gender == "male"  # order code 013 is odd
    assert parsed.region_code == "411081"
    assert parse_national_id(make_national_id("411081", date(1990, 1, 1), 12)).gender == "female"


def test_published_example_validates() -> None:
    assert parse_national_id("360426199101010071").birth_date == date(1991, 1, 1)


def test_lowercase_x_check_digit_accepted() -> None:
    # find an order code whose check digit is X
    for order in range(1000):
        nid = make_national_id("411081", date(1960, 2, 29), order)
        if nid.endswith("X"):
            assert parse_national_id(nid.lower()).number == nid
            return
    pytest.fail("no X check digit found in 1000 order codes")


def test_region_renamed_after_birth_is_accepted() -> None:
    """411081 (禹州市) exists since 1989; an elderly resident born in 1940 still carries it."""
    assert parse_national_id(make_national_id("411081", date(1940, 3, 3), 7)).birth_date.year == 1940


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("41108119500501012", "18"),
        ("4110811950050101AB", "digits"),
        ("411081195002300123", "birth"),
        ("999999195005010123", "region"),
    ],
)
def test_bad_ids_rejected(raw: str, reason: str) -> None:
    if reason in ("birth", "region"):  # give them a correct check digit so the later check is reached
        raw = make_national_id(raw[:6], date(1950, 5, 1), 12) if reason == "region" else raw
    with pytest.raises(Invalid) as err:
        parse_national_id(raw)
    assert err.value.code == "invalid-national-id"


def test_wrong_check_digit_rejected() -> None:
    nid = make_national_id("411081", date(1950, 5, 1), 12)
    wrong = nid[:17] + ("0" if nid[17] != "0" else "1")
    with pytest.raises(Invalid, match="check digit"):
        parse_national_id(wrong)


def test_impossible_date_rejected_even_with_valid_check_digit() -> None:
    body = "41108119500230012"
    from stdnum.cn import ric

    nid = body + ric.calc_check_digit(body + "0")
    with pytest.raises(Invalid, match="birth date"):
        parse_national_id(nid)


def test_future_birth_rejected() -> None:
    nid = make_national_id("411081", date(2030, 1, 1), 12)
    with pytest.raises(Invalid, match="out of range"):
        parse_national_id(nid, today=date(2026, 1, 1))
