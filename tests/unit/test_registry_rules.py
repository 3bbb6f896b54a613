import uuid
from datetime import date
from decimal import Decimal

import pytest

from services.registry.domain.catalogues import Catalogue, check_tier, normalise_icd10
from services.registry.domain.contracts import (
    RECORDED_FLAGS,
    ContractStatus,
    KeyPopulation,
    check_new_contract,
    check_termination,
    contract_term,
    key_populations,
    renewal_term,
)
from services.registry.domain.coverage import CoverageCounts, evaluate_coverage
from services.registry.domain.institutions import InstitutionType, Membership, Tier, check_institution
from services.registry.domain.practitioners import add_months
from services.registry.domain.settings import RegistryRules
from services.registry.schemas import ResidentIn
from shared.errors import Conflict, Invalid

SEEDS = RegistryRules().coverage_targets()  # 30 / 60 / 100 %


def test_add_months_clamps_month_end() -> None:
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2026, 3, 15), -12 * 65) == date(1961, 3, 15)


class TestContracts:
    def test_one_active_contract(self) -> None:
        with pytest.raises(Conflict):
            check_new_contract(has_active=True, resident_active=True, team_active=True, same_community=True)
        check_new_contract(has_active=False, resident_active=True, team_active=True, same_community=True)

    def test_team_of_other_community_refused(self) -> None:
        with pytest.raises(Invalid, match="own community"):
            check_new_contract(has_active=False, resident_active=True, team_active=True, same_community=False)

    def test_term_is_one_year(self) -> None:
        term = contract_term(date(2026, 3, 1))
        assert (term.start, term.end) == (date(2026, 3, 1), date(2027, 2, 28))

    def test_renewal_window_and_follow_on_term(self) -> None:
        with pytest.raises(Conflict, match="within 60 days"):
            renewal_term(ContractStatus.ACTIVE, date(2026, 12, 31), date(2026, 10, 1))
        term = renewal_term(ContractStatus.ACTIVE, date(2026, 12, 31), date(2026, 12, 1))
        assert term.start == date(2027, 1, 1) and term.end == date(2027, 12, 31)
        with pytest.raises(Conflict):
            renewal_term(ContractStatus.TERMINATED, date(2026, 12, 31), date(2026, 12, 1))

    def test_termination_needs_active_and_reason(self) -> None:
        with pytest.raises(Invalid):
            check_termination(ContractStatus.ACTIVE, "  ")
        with pytest.raises(Conflict):
            check_termination(ContractStatus.RENEWED, "moved away")

    def test_key_population_by_age_and_flags(self) -> None:
        on = date(2026, 3, 1)
        assert key_populations(date(1961, 3, 1), set(), on) == {"elderly"}
        assert key_populations(date(1961, 3, 2), set(), on) == set()
        assert key_populations(date(2019, 3, 2), set(), on) == {"child"}
        assert key_populations(date(2019, 3, 1), set(), on) == set()  # turned 7 today
        assert key_populations(date(1990, 1, 1), {"registered_poor"}, on) == {"registered_poor"}

    def test_family_planning_special_assistance_families_are_a_key_population(self) -> None:
        """002 §21 names 计划生育特别扶助目标人群 among the groups family doctors start from."""
        assert KeyPopulation.FAMILY_PLANNING_SPECIAL in RECORDED_FLAGS
        body = ResidentIn.model_validate(
            {
                "national_id": "x",
                "name": "x",
                "community_id": str(uuid.uuid4()),
                "key_populations": ["family_planning_special"],
            }
        )
        assert body.key_populations == ["family_planning_special"]
        on = date(2026, 3, 1)
        assert key_populations(date(1962, 5, 1), set(body.key_populations), on) == {"family_planning_special"}


class TestCoverage:
    def test_rates_and_targets(self) -> None:
        lines = evaluate_coverage(CoverageCounts(1000, 300, 200, 119, 10, 10), SEEDS)
        by = {x.population: x for x in lines}
        assert by["residents"].rate == Decimal("0.3000") and by["residents"].meets_target
        assert by["key_populations"].rate == Decimal("0.5950") and not by["key_populations"].meets_target
        assert by["registered_poor"].meets_target

    def test_one_poor_resident_unsigned_misses_the_100_percent_target(self) -> None:
        by = {x.population: x for x in evaluate_coverage(CoverageCounts(10, 9, 5, 5, 5, 4), SEEDS)}
        assert not by["registered_poor"].meets_target

    def test_empty_group_has_no_rate(self) -> None:
        by = {x.population: x for x in evaluate_coverage(CoverageCounts(0, 0, 0, 0, 0, 0), SEEDS)}
        assert by["residents"].rate is None and by["residents"].meets_target

    def test_inconsistent_counts_raise(self) -> None:
        with pytest.raises(ValueError):
            evaluate_coverage(CoverageCounts(10, 11, 0, 0, 0, 0), SEEDS)


class TestInstitutions:
    def test_village_clinic_must_be_village_tier(self) -> None:
        with pytest.raises(Invalid) as err:
            check_institution(Tier.TOWNSHIP, InstitutionType.VILLAGE_CLINIC, None, None)
        assert err.value.code == "tier-type-mismatch"

    def test_lead_must_be_county(self) -> None:
        with pytest.raises(Invalid, match="county"):
            check_institution(Tier.TOWNSHIP, InstitutionType.GENERAL, Membership.LEAD, uuid.uuid4())

    def test_collaborating_only_cdc_or_maternal_child(self) -> None:
        check_institution(Tier.COUNTY, InstitutionType.CDC, Membership.COLLABORATING, uuid.uuid4())
        with pytest.raises(Invalid):
            check_institution(Tier.COUNTY, InstitutionType.GENERAL, Membership.COLLABORATING, uuid.uuid4())

    def test_membership_and_community_go_together(self) -> None:
        with pytest.raises(Invalid):
            check_institution(Tier.COUNTY, InstitutionType.GENERAL, Membership.TIGHT, None)


class TestCatalogues:
    def test_icd10_normalised(self) -> None:
        assert normalise_icd10(" i10 ") == "I10"
        assert normalise_icd10("e11.9") == "E11.9"
        for bad in ("110", "I1", "I10.", "II10"):
            with pytest.raises(Invalid):
                normalise_icd10(bad)

    def test_first_in_county_has_no_tier(self) -> None:
        with pytest.raises(Invalid):
            check_tier(Catalogue.FIRST_IN_COUNTY, "village")
        check_tier(Catalogue.GRASSROOTS, "village")
