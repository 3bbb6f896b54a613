"""Billing use cases called directly on a read model and an insurance year the factories prepare, in a
unit of work on the real database rolled back after each test: claims priced referred and unreferred by
hand-computed figures, a claim waiting for its referral, duplicates, refused batches that write nothing,
and budgets whose journal the database checks at commit; an up-and-down episode with one deductible, a
chain not all known yet, claims of an institution not designated, out-of-county care charged once, and a
year whose first prepayments rounded each month's deposit still withholding its deposit to the fen."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from services.billing.domain.budget import Prepayment
from services.billing.domain.postings import prepayment_journal
from services.billing.repository import budgets_of
from services.billing.schemas import BatchOut, ClaimIn, OutOfCountyCareIn
from services.billing.usecases import claims, out_of_county, repricing, runs, years
from services.billing.usecases.ledger import post_journal
from shared.errors import Conflict, Forbidden, Invalid
from shared.money import allocate, apply_rate
from shared.principal import Principal, Role

from ..conftest import BILLING_NOW
from ..factories import COUNTY, OFFICER, BillingCounty, BillingRows, billing_county, parameters_body
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
    body = parameters_body({first.id: 10_000, second.id: 30_000})
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


# --- issue #14: one episode up and down, designated providers, incomplete chains, out-of-county care ---


def township_his(c: BillingCounty) -> Principal:
    return Principal(subject="his@township", role=Role.HIS_SYSTEM, institution_id=c.township.id)


def township_claim(c: BillingCounty, no: str, eligible: int = 50_000, **fields: Any) -> ClaimIn:
    return claim(c, no, eligible, institution_id=c.township.id, **fields)


async def test_a_claim_on_the_way_home_pays_no_second_deductible(billing: TxDatabase) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    up = await rows.referral(c.resident, to=c.hospital, status="completed", direction="up")
    down = await rows.referral(
        c.resident,
        to=c.township,
        from_institution=c.hospital,
        direction="down",
        continues_referral_id=up.id,
    )
    [county] = (await ingest(billing, c, [claim(c, "UP-1", referral_id=up.id)])).claims or []
    assert (county.deductible_used, county.insurance_share) == (60_000, 28_000)

    home = [township_claim(c, "DOWN-1", referral_id=down.id)]
    [township] = (
        await billing.run(lambda s: claims.ingest_claims(s, township_his(c), home, BILLING_NOW, True))
    ).claims or []

    # 下转免起付线 (the default): the township's 20,000 is not charged again; 0.85 × 50,000
    assert (township.referred, township.deductible_used, township.insurance_share) == (True, 0, 42_500)
    chains = await billing.connection.execute(sa.text("SELECT claim_no, chain_id, leg FROM claims"))
    assert {n: (str(ch), leg) for n, ch, leg in chains} == {
        "UP-1": (str(up.id), "up"),
        "DOWN-1": (str(up.id), "down"),
    }


@pytest.mark.parametrize("link", ["continues_referral_id", "replaces_referral_id"])
async def test_a_claim_whose_chain_is_not_all_known_waits_for_the_missing_referral(
    billing: TxDatabase, link: str
) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    not_yet = uuid.uuid4()  # the upward referral (or the one re-requested) has not reached billing
    link_to: dict[str, Any] = {link: not_yet}
    down = await rows.referral(
        c.resident, to=c.township, from_institution=c.hospital, direction="down", **link_to
    )
    home = [township_claim(c, "W-1", referral_id=down.id)]

    [waiting] = (
        await billing.run(lambda s: claims.ingest_claims(s, township_his(c), home, BILLING_NOW, True))
    ).claims or []

    assert (waiting.pricing, waiting.awaiting_referral_id, waiting.referred) == (
        "provisional",
        not_yet,
        False,
    )
    assert (waiting.deductible_used, waiting.insurance_share) == (20_000, 25_500)  # as unreferred, for now
    await rows.referral(c.resident, to=c.hospital, id=not_yet, status="completed", direction="up")
    [final] = await billing.run(lambda s: repricing.reprice_waiting(s, not_yet, BILLING_NOW))
    if link == "continues_referral_id":  # the way home of the episode: no deductible
        assert (final.pricing, final.referred, final.deductible_used, final.insurance_share) == (
            "final",
            True,
            0,
            42_500,
        )
    else:  # a re-request of a downward referral: one chain, the usual deductible
        assert (final.pricing, final.referred, final.deductible_used) == ("final", True, 20_000)
    assert final.chain_id == not_yet


async def test_claims_from_an_institution_not_designated_are_refused(billing: TxDatabase) -> None:
    rows = BillingRows(billing.session)
    c = await billing_county(billing.session)
    clinic = await rows.institution(c.community, "village", insurance_designated=False)
    his_of_clinic = Principal(subject="his@clinic", role=Role.HIS_SYSTEM, institution_id=clinic.id)
    batch = [claim(c, f"ND-{n}", 10_000, institution_id=clinic.id) for n in (1, 2)]

    with pytest.raises(Invalid) as caught:
        await billing.run(lambda s: claims.ingest_claims(s, his_of_clinic, batch, BILLING_NOW, True))

    assert caught.value.code == "institution-not-designated"
    assert all("定点" in item.zh and "designated" in item.en for item in caught.value.items)
    assert [item.where for item in caught.value.items] == [
        {"index": 0, "claim_no": "ND-1"},
        {"index": 1, "claim_no": "ND-2"},
    ]
    assert await billing.count("claims") == 0


async def budgeted_year(billing: TxDatabase, year: int, **overrides: Any) -> tuple[Any, Any]:
    """A community with a resident and a budget for `year` (derived by the use cases; `overrides`: any
    field of `ParametersIn`)."""
    rows = BillingRows(billing.session)
    community = await rows.community()
    resident = await rows.resident(community)
    body = parameters_body({community.id: 10_000}, **overrides)
    await billing.run(lambda s: years.set_parameters(s, OFFICER, COUNTY, year, body, BILLING_NOW))
    await billing.run(lambda s: years.derive_budgets(s, OFFICER, COUNTY, year, BILLING_NOW))
    return community, resident


def care(resident: Any, no: str, day: date = date(2032, 4, 20), share: int = 300_000, **fields: Any) -> Any:
    return OutOfCountyCareIn.model_validate(
        {
            "record_no": no,
            "resident_id": resident.id,
            "settled_on": day,
            "destination_name": "郑州大学第一附属医院",
            "destination_code": "H41010300001",
            "destination_province": "410000",
            "destination_city": "410100",
            "diagnosis_icd10": "I63.9",
            "referred": True,
            "total_cost": 500_000,
            "fund_share": share,
            **fields,
        }
    )


async def test_out_of_county_care_is_charged_to_the_community_budget_once(billing: TxDatabase) -> None:
    community, resident = await budgeted_year(billing, 2032)
    before = await billing.outbox_seq()

    out = await billing.run(
        lambda s: out_of_county.record_care(s, OFFICER, [care(resident, "P-1")], BILLING_NOW, True)
    )

    assert (out.created, out.duplicates, out.fund_share) == (1, 0, 300_000)
    lines = await billing.connection.execute(
        sa.text(
            "SELECT j.kind, j.month, l.account, l.community_id, l.amount FROM ledger_lines l "
            "JOIN journals j ON j.id = l.journal_id WHERE j.kind = 'out_of_county' ORDER BY l.id"
        )
    )
    assert [tuple(x) for x in lines] == [
        ("out_of_county", 4, "provider.out_of_county", community.id, 300_000),
        ("out_of_county", 4, "community.budget", community.id, -300_000),
    ]
    [event] = await billing.outbox(after_seq=before)
    assert (event.topic, event.event.type) == ("billing.periods", "billing.out_of_county.posted")

    again = await billing.run(
        lambda s: out_of_county.record_care(s, OFFICER, [care(resident, "P-1")], BILLING_NOW, True)
    )
    assert (again.created, again.duplicates, again.fund_share) == (0, 1, 0)
    assert await billing.count("out_of_county_care") == 1
    assert await billing.count("journals", "kind = 'out_of_county'") == 1
    with pytest.raises(Invalid) as caught:
        changed = care(resident, "P-1", share=200_000)
        await billing.run(lambda s: out_of_county.record_care(s, OFFICER, [changed], BILLING_NOW, False))
    assert caught.value.code == "record-number-reused"


async def test_out_of_county_care_is_refused_in_a_settled_or_unbudgeted_year(billing: TxDatabase) -> None:
    _, resident = await budgeted_year(billing, 2032)
    await billing.connection.execute(
        sa.text("UPDATE insurance_years SET status = 'settled' WHERE year = 2032")
    )
    with pytest.raises(Conflict) as settled:
        await billing.run(
            lambda s: out_of_county.record_care(s, OFFICER, [care(resident, "S-1")], BILLING_NOW, False)
        )
    assert settled.value.code == "year-settled"
    late = care(resident, "S-2", day=date(2031, 6, 1))
    with pytest.raises(Invalid) as unbudgeted:
        await billing.run(lambda s: out_of_county.record_care(s, OFFICER, [late], BILLING_NOW, False))
    assert unbudgeted.value.code == "year-not-budgeted"
    his_of = Principal(subject="his", role=Role.HIS_SYSTEM, institution_id=uuid.uuid4())
    with pytest.raises(Forbidden):
        await billing.run(lambda s: out_of_county.record_care(s, his_of, [late], BILLING_NOW, False))
    assert await billing.count("out_of_county_care") == 0 and await billing.count("journals") == 1


async def test_a_year_begun_with_monthly_rounded_deposits_still_withholds_its_deposit_to_the_fen(
    billing: TxDatabase,
) -> None:
    # 10,000 insured at 1,000 元: raised 1,000,000,000 fen, catastrophic 79,999,910, reserve 5 % of the
    # raised total 50,000,000 → a budget of 870,000,090 (72,500,007.5 a month) and a year's deposit of
    # 5 % = 43,500,004.5 → 43,500,005. January to March were withheld before this release, each month's
    # 5 % rounded on its own: 3,625,000 × 3 (the split of the year's deposit would have withheld 3,625,001)
    year = 2034
    community, _ = await budgeted_year(billing, year, catastrophic_rate=None, catastrophic_amount=79_999_910)
    [budget] = await budgets_of(billing.session, COUNTY, year)
    derived = {x["label"]: x["fen"] for x in budget.derivation}
    assert (budget.amount, derived["quality_deposit"]) == (870_000_090, 43_500_005)
    c = str(community.id)
    for month, gross in zip((1, 2, 3), allocate(budget.amount, [1] * 12), strict=False):
        old = Prepayment(month, gross, apply_rate(gross, Decimal("0.05")))
        assert old.deposit == 3_625_000
        j = prepayment_journal(c, year, old)
        await billing.run(
            partial(post_journal, j=j, county=COUNTY, year=year, month=month, now=BILLING_NOW, subject=c)
        )

    withheld = []
    for month in range(4, 13):
        run = partial(
            runs.run_prepayment, who=OFFICER, county=COUNTY, year=year, month=month, now=BILLING_NOW
        )
        out = await billing.run(run)
        withheld.append(out.journals[0]["deposit"])

    # April to December share what is left, 32,625,005: 3,625,000 a month and the 5 fen of remainder to
    # the earliest (the split of the whole year would have given April and May one each: 3 fen short)
    assert withheld == [3_625_001] * 5 + [3_625_000] * 4
    total = await billing.connection.scalar(
        sa.text("SELECT sum(amount) FROM ledger_lines WHERE account = 'community.deposit'")
    )
    assert total == 43_500_005
