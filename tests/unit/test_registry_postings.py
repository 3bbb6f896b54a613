"""Postings (004 §七): who may be posted, stationed or rotating, for how long, and the county's rules
(minimum months, the physician's minimum title) taken as given."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.registry.domain.postings import (
    PostingKind,
    PostingRole,
    PostingRules,
    Staff,
    Term,
    Weekday,
    check_posting,
    week_order,
)
from services.registry.domain.practitioners import Profession, Title, check_practitioner
from shared.errors import Invalid

HOME, HOST = uuid.uuid4(), uuid.uuid4()
SEEDS = PostingRules(min_months=6, physician_min_title=Title.ATTENDING)
RESIDENT, ROTATING = PostingKind.RESIDENT, PostingKind.ROTATING
TUE_THU = frozenset({Weekday.TUE, Weekday.THU})


def physician(title: Title = Title.ATTENDING) -> Staff:
    return Staff(Profession.PHYSICIAN, title, HOME)


NURSE = Staff(Profession.NURSE, Title.NURSE_IN_CHARGE, HOME)
CDC = Staff(Profession.PUBLIC_HEALTH, Title.RESIDENT, HOME)


def refused(
    staff: Staff,
    role: PostingRole,
    term: Term,
    existing: list[Term] | None = None,
    rules: PostingRules = SEEDS,
    host: uuid.UUID = HOST,
) -> str:
    with pytest.raises(Invalid) as err:
        check_posting(staff, role, host, term, existing or [], rules)
    assert err.value.zh and err.value.en
    return err.value.code


class TestPhysicians:
    def test_six_months_exactly_is_enough(self) -> None:
        term = Term(RESIDENT, date(2026, 1, 31), date(2026, 7, 31))
        check_posting(physician(), PostingRole.PHYSICIAN, HOST, term, [], SEEDS)

    def test_one_day_short_is_refused(self) -> None:
        term = Term(RESIDENT, date(2026, 1, 31), date(2026, 7, 30))
        assert refused(physician(Title.CHIEF), PostingRole.PHYSICIAN, term) == "posting-too-short"

    @pytest.mark.parametrize("title", [Title.RESIDENT, Title.ASSISTANT, Title.VILLAGE_DOCTOR])
    def test_junior_titles_cannot_be_posted(self, title: Title) -> None:
        term = Term(RESIDENT, date(2026, 1, 1), date(2027, 1, 1))
        assert refused(physician(title), PostingRole.PHYSICIAN, term) == "posting-title"

    def test_a_physician_is_stationed_not_rotating(self) -> None:
        """004 §七: 下沉医师实行驻扎式帮扶; only the other staff may choose 巡回式."""
        term = Term(ROTATING, date(2026, 1, 1), date(2026, 3, 1), TUE_THU)
        assert refused(physician(Title.CHIEF), PostingRole.PHYSICIAN, term) == "posting-physician-rotating"

    def test_the_physician_seat_is_for_physicians_and_the_nursing_seat_for_nurses(self) -> None:
        year = Term(RESIDENT, date(2026, 1, 1), date(2027, 1, 1))
        assert refused(NURSE, PostingRole.PHYSICIAN, year) == "posting-role-profession"
        assert refused(physician(), PostingRole.NURSING, year) == "posting-role-profession"

    def test_overlap_and_same_institution_refused(self) -> None:
        term = Term(RESIDENT, date(2026, 6, 1), date(2027, 1, 1))
        earlier = Term(RESIDENT, date(2026, 1, 1), date(2026, 6, 30))
        assert refused(physician(Title.CHIEF), PostingRole.PHYSICIAN, term, [earlier]) == "posting-overlap"
        year = Term(RESIDENT, date(2026, 1, 1), date(2027, 1, 1))
        assert refused(physician(), PostingRole.PHYSICIAN, year, host=HOME) == "posting-same-institution"


class TestTheCountysRules:
    def test_a_county_that_asks_for_a_year_refuses_six_months(self) -> None:
        six = Term(RESIDENT, date(2026, 1, 1), date(2026, 7, 1))
        rules = PostingRules(min_months=12, physician_min_title=Title.ATTENDING)
        assert refused(physician(), PostingRole.PHYSICIAN, six, rules=rules) == "posting-too-short"
        check_posting(physician(), PostingRole.PHYSICIAN, HOST, six, [], SEEDS)

    def test_a_county_that_asks_for_associate_chiefs_refuses_an_attending(self) -> None:
        year = Term(RESIDENT, date(2026, 1, 1), date(2027, 1, 1))
        rules = PostingRules(min_months=6, physician_min_title=Title.ASSOCIATE_CHIEF)
        assert refused(physician(), PostingRole.PHYSICIAN, year, rules=rules) == "posting-title"
        check_posting(physician(Title.ASSOCIATE_CHIEF), PostingRole.PHYSICIAN, HOST, year, [], rules)


class TestOtherStaff:
    @pytest.mark.parametrize(
        ("staff", "role"),
        [
            (NURSE, PostingRole.NURSING),
            (NURSE, PostingRole.INFECTION_CONTROL),
            (CDC, PostingRole.PUBLIC_HEALTH),
            (physician(Title.RESIDENT), PostingRole.QUALITY_CONTROL),
            (CDC, PostingRole.SUPERVISION),
        ],
    )
    def test_nurses_cdc_and_quality_staff_may_rotate_for_a_few_weeks(
        self, staff: Staff, role: PostingRole
    ) -> None:
        """No minimum length, no attending title: those are the posted physician's rules."""
        term = Term(ROTATING, date(2026, 3, 1), date(2026, 4, 30), TUE_THU)
        check_posting(staff, role, HOST, term, [], SEEDS)

    def test_a_stationed_nurse_stays_the_county_minimum(self) -> None:
        short = Term(RESIDENT, date(2026, 3, 1), date(2026, 4, 30))
        assert refused(NURSE, PostingRole.NURSING, short) == "posting-too-short"
        check_posting(
            NURSE, PostingRole.NURSING, HOST, Term(RESIDENT, date(2026, 3, 1), date(2026, 9, 1)), [], SEEDS
        )

    def test_rotating_needs_its_days_and_resident_has_none(self) -> None:
        assert refused(NURSE, PostingRole.NURSING, Term(ROTATING, date(2026, 3, 1), date(2026, 9, 1))) == (
            "posting-weekdays"
        )
        stationed_on_days = Term(RESIDENT, date(2026, 3, 1), date(2026, 9, 1), TUE_THU)
        assert refused(NURSE, PostingRole.NURSING, stationed_on_days) == "posting-weekdays"

    def test_rotations_on_other_days_may_run_side_by_side(self) -> None:
        tue_thu = Term(ROTATING, date(2026, 3, 1), date(2026, 12, 31), TUE_THU)
        mon_wed = Term(ROTATING, date(2026, 6, 1), date(2026, 8, 31), frozenset({Weekday.MON, Weekday.WED}))
        check_posting(NURSE, PostingRole.INFECTION_CONTROL, HOST, mon_wed, [tue_thu], SEEDS)
        thursdays = Term(ROTATING, date(2026, 6, 1), date(2026, 8, 31), frozenset({Weekday.THU}))
        assert refused(NURSE, PostingRole.NURSING, thursdays, [tue_thu]) == "posting-overlap"
        stationed = Term(RESIDENT, date(2026, 6, 1), date(2026, 12, 31))
        assert refused(NURSE, PostingRole.NURSING, stationed, [tue_thu]) == "posting-overlap"

    def test_days_are_kept_once_monday_first(self) -> None:
        assert week_order(["thu", "tue", "thu"]) == [Weekday.TUE, Weekday.THU]


class TestProfessions:
    def test_a_title_belongs_to_its_profession(self) -> None:
        check_practitioner(Profession.NURSE, Title.CHIEF_NURSE, False)
        check_practitioner(Profession.PUBLIC_HEALTH, Title.ATTENDING, False)
        for profession, title in [
            (Profession.NURSE, Title.ATTENDING),
            (Profession.PHYSICIAN, Title.NURSE),
            (Profession.PUBLIC_HEALTH, Title.VILLAGE_DOCTOR),
        ]:
            with pytest.raises(Invalid) as err:
                check_practitioner(profession, title, False)
            assert err.value.code == "title-profession"

    def test_only_a_physician_is_a_general_practitioner(self) -> None:
        with pytest.raises(Invalid) as err:
            check_practitioner(Profession.NURSE, Title.NURSE, True)
        assert err.value.code == "gp-not-physician"


def test_rotations_overlap_only_on_a_shared_weekday_inside_the_common_days() -> None:
    rotating = PostingKind.ROTATING
    tuesday_short = Term(rotating, date(2026, 3, 3), date(2026, 3, 4), frozenset({Weekday.TUE}))
    from_wednesday = Term(rotating, date(2026, 3, 4), date(2026, 6, 30), frozenset({Weekday.TUE}))
    assert not tuesday_short.overlaps(from_wednesday)  # they share Tuesdays, but never the same one
    from_tuesday = Term(rotating, date(2026, 3, 3), date(2026, 6, 30), frozenset({Weekday.TUE}))
    assert tuesday_short.overlaps(from_tuesday) and from_tuesday.overlaps(tuesday_short)
    thursdays = Term(rotating, date(2026, 3, 1), date(2026, 6, 30), frozenset({Weekday.THU}))
    assert not thursdays.overlaps(from_tuesday)
