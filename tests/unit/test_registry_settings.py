"""The registry's county settings: the seeds' numbers by default, what the domain gets from them, and
the values a commission cannot set."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.registry.domain.coverage import CoverageCounts, CoverageTargets, evaluate_coverage
from services.registry.domain.postings import PostingRules
from services.registry.domain.practitioners import Title
from services.registry.domain.settings import RegistryRules, end_of
from shared.county_policy import decode, encode
from shared.errors import Invalid


def test_the_defaults_are_the_seeds_numbers() -> None:
    rules = RegistryRules()
    assert rules.coverage_targets() == CoverageTargets(Decimal("0.30"), Decimal("0.60"), Decimal("1.00"))
    assert rules.first_in_county_minimum == 50
    assert rules.posting_rules() == PostingRules(6, Title.ATTENDING)
    assert decode(RegistryRules, encode(rules)) == rules


def test_a_county_target_changes_what_meets_it() -> None:
    counts = CoverageCounts(1000, 320, 200, 130, 10, 10)
    seeds = {
        x.population: x.meets_target for x in evaluate_coverage(counts, RegistryRules().coverage_targets())
    }
    assert seeds["residents"] and seeds["key_populations"]
    stricter = decode(
        RegistryRules, {"coverage_target_residents": "0.35", "coverage_target_key_populations": "0.70"}
    )
    by = {x.population: x for x in evaluate_coverage(counts, stricter.coverage_targets())}
    assert not by["residents"].meets_target and by["residents"].target == Decimal("0.35")
    assert not by["key_populations"].meets_target


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"coverage_target_residents": "1.2"}, "bad-setting"),
        ({"coverage_target_key_populations": "-0.1"}, "bad-setting"),
        ({"coverage_target_registered_poor": "0.33333"}, "bad-setting"),
        ({"coverage_target_residents": 0.3}, "bad-setting"),  # a float: send "0.30"
        ({"first_in_county_minimum": -1}, "bad-setting"),
        ({"posting_min_months": 0}, "bad-setting"),
        ({"posting_min_months": "6"}, "bad-setting"),
        ({"posting_physician_min_title": "chief_nurse"}, "bad-setting"),
        ({"posting_physician_min_title": "professor"}, "bad-setting"),
        ({"key_population_target": "0.6"}, "unknown-setting"),
    ],
)
def test_nonsense_is_refused_in_both_languages(changes: dict[str, object], code: str) -> None:
    with pytest.raises(Invalid) as err:
        decode(RegistryRules, {**encode(RegistryRules()), **changes})
    assert err.value.code == code and err.value.zh and err.value.en


def test_a_share_with_trailing_zeros_is_still_four_decimals() -> None:
    assert decode(
        RegistryRules, {"coverage_target_residents": "0.350000"}
    ).coverage_target_residents == Decimal("0.35")


def test_the_rules_on_a_day_are_those_changed_before_it_ended_in_china() -> None:
    assert end_of(date(2026, 3, 1)) == datetime(2026, 3, 1, 15, 59, 59, 999999, tzinfo=UTC)
