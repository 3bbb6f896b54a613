"""Billing use cases called directly on a read model and an insurance year the factories prepare, in a
unit of work on the real database rolled back after each test: claims priced referred and unreferred by
hand-computed figures, a claim waiting for its referral, duplicates, refused batches that write nothing,
and budgets whose journal the database checks at commit."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from services.billing.schemas import BatchOut, ClaimIn, ParametersIn
from services.billing.usecases import claims, years
from shared.errors import Conflict, Invalid
from shared.principal import Principal, Role

from ..conftest import BILLING_NOW
from ..factories import COUNTY, OFFICER, TIER_RULES, BillingCounty, BillingRows, billing_county
from .rollback import TxDatabase

DAY = date(2030, 3, 10)  # in billing_county's year (2030), before BILLING_NOW


def his(c: BillingCounty) -> Principal:
    return Principal(subject="his@county-hospital", role=Role.HIS_SYSTEM, institution_id=c.hospital.id)


def claim(c: BillingCounty, no: str, eligible: int = 100_000, **fields: Any) -> ClaimIn:
    return ClaimIn.model_validate(
        {
            "claim_no": no,
            "institution_id": c.hospital.id,
            "resident_id": c.resident.id,
            "kind": "outpatient",
            "service_date": DAY,
            "diagnosis_icd10": "I10",
            "total_cost": eligible + 5_000,
            "eligible_cost": eligible,
            **fields,
        }
    )


async def ingest(billing: TxDatabase, c: BillingCounty, batch: list[ClaimIn]) -> BatchOut:
    return await billing.run(lambda s: claims.ingest_claims(s, his(c), batch, BILLING_NOW, detail=True))


async def test_a_referred_county_visit_for_a_grassroots_disease_is_paid_at_the_county_ratio(
    billing: TxDatabase,
) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    await rows.catalogue_entry("I10", "grassroots")
    referral = await rows.referral(c.resident, to=c.hospital, status="accepted")

    out = await ingest(billing, c, [claim(c, "R-1", referral_id=referral.id), claim(c, "U-1")])

    referred, unreferred = out.claims or []
    # 100,000 fen eligible, 60,000 county deductible; 40,000 at 70 % referred, at 50 % unreferred
    assert (referred.referred, referred.deductible_used, referred.insurance_share) == (True, 60_000, 28_000)
    assert (unreferred.referred, unreferred.deductible_used, unreferred.insurance_share) == (
        False,
        60_000,
        20_000,
    )
    assert str(referred.ratio) == "0.7000" and str(unreferred.ratio) == "0.5000"
    assert referred.grassroots_disease and unreferred.grassroots_disease
    assert (out.created, out.insurance_share) == (2, 48_000)
    assert await billing.count("claims") == 2


async def test_a_claim_naming_a_referral_billing_has_not_heard_of_is_priced_provisionally(
    billing: TxDatabase,
) -> None:
    c = await billing_county(billing.session)
    await BillingRows(billing.session).catalogue_entry("I10", "grassroots")
    unknown = c.resident.id  # any id billing has no referral for

    [priced] = (await ingest(billing, c, [claim(c, "P-1", referral_id=unknown)])).claims or []

    assert (priced.pricing, priced.awaiting_referral_id) == ("provisional", unknown)
    assert (priced.referred, priced.insurance_share) == (False, 20_000)  # as unreferred, until it is known


async def test_the_same_claim_twice_is_stored_once(billing: TxDatabase) -> None:
    c = await billing_county(billing.session)
    await ingest(billing, c, [claim(c, "D-1")])

    again = await ingest(billing, c, [claim(c, "D-1")])

    assert (again.created, again.duplicates, again.insurance_share) == (0, 1, 0)
    assert await billing.count("claims") == 1

    with pytest.raises(Invalid) as caught:  # the same number with other content is refused
        await ingest(billing, c, [claim(c, "D-1", eligible=90_000)])
    assert caught.value.code == "claim-number-reused"


async def test_a_batch_with_one_bad_claim_is_refused_whole_and_writes_nothing(billing: TxDatabase) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    stranger = await rows.resident(active=False)

    with pytest.raises(Invalid) as caught:
        await ingest(billing, c, [claim(c, "OK-1"), claim(c, "BAD-1", resident_id=stranger.id)])

    assert caught.value.code == "unknown-resident"
    assert [item.where for item in caught.value.items] == [{"index": 1, "claim_no": "BAD-1"}]
    assert await billing.count("claims") == 0


async def test_a_claim_in_a_closed_month_is_a_conflict(billing: TxDatabase) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    await rows.insurance_year(2031, {c.community: 10_000}, closed_months=3)

    with pytest.raises(Conflict) as caught:
        await ingest(billing, c, [claim(c, "L-1", service_date=date(2031, 3, 31))])

    assert caught.value.code == "period-closed"
    assert await billing.count("claims") == 0


async def test_deriving_budgets_posts_one_balanced_journal_checked_at_commit(billing: TxDatabase) -> None:
    rows = BillingRows(billing.session)
    first, second = await rows.community(), await rows.community()
    body = ParametersIn.model_validate(
        {
            "individual_contribution": 40_000,
            "fiscal_subsidy": 60_000,
            "catastrophic_rate": "0.08",
            "tiers": TIER_RULES,
            "unreferred_county_ratio": "0.50",
            "dip_budget_rate": "0.40",
            "dip_estimated_point_value": "100",
            "communities": [
                {"community_id": first.id, "covered_residents": 10_000},
                {"community_id": second.id, "covered_residents": 30_000},
            ],
        }
    )
    await billing.run(lambda s: years.set_parameters(s, OFFICER, COUNTY, 2032, body, BILLING_NOW))

    run = await billing.run(lambda s: years.derive_budgets(s, OFFICER, COUNTY, 2032, BILLING_NOW))

    assert run.posted and len(run.journals) == 1
    assert await billing.count("budgets", "year = 2032") == 2
    assert await billing.count("journals") == 1
    lines = (
        await billing.connection.execute(sa.text("SELECT count(*), sum(amount) FROM ledger_lines"))
    ).one()
    assert lines[0] > 0 and lines[1] == 0  # balanced (an unbalanced one fails the commit: test_rollback)
    types = sorted(w.event.type for w in await billing.outbox())
    assert types == ["billing.budget.derived"] * 2 + ["billing.budget.posted"]

    again = await billing.run(lambda s: years.derive_budgets(s, OFFICER, COUNTY, 2032, BILLING_NOW))
    assert not again.posted and await billing.count("journals") == 1
