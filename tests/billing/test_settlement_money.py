"""The settlement money of issue 14 through the billing API, by hand to the fen: catastrophic insurance and
the DIP budget as amounts (10), the deposit decided apart from the overspend sharing (11), and the year's
deposit over the months (12). The risk-reserve readings (9) are in the worked example."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, officer, open_year, parameters, post_claims, run

AMOUNTS_YEAR = 2041
DEPOSIT_YEAR = 2042
SMALL_YEAR = 2043


@contextmanager
def clock_in(app: FastAPI, year: int) -> Iterator[None]:
    """Billing's session clock moved to the start of the year after `year`, so claims of `year` are not in
    the future, and back afterwards."""
    before = app.state.clock.at
    app.state.clock.at = datetime(year + 1, 1, 1, 2, 0, tzinfo=UTC)
    try:
        yield
    finally:
        app.state.clock.at = before


def labelled(budget: dict[str, Any]) -> dict[str, int]:
    return {x["label"]: x["fen"] for x in budget["derivation"]}


async def test_catastrophic_insurance_and_the_dip_budget_as_amounts(
    billing_client: AsyncClient, county: World
) -> None:
    c, w = billing_client, county
    url = f"/v1/insurance-years/{COUNTY}/{AMOUNTS_YEAR}/parameters"
    amounts = {"catastrophic_rate": None, "catastrophic_per_person": 6_000}  # 60 元 a head
    for bad in (
        {"catastrophic_per_person": 6_000},  # and the default body's rate: two forms
        {"catastrophic_rate": None},  # no form
        {"catastrophic_rate": None, "catastrophic_amount": 10_000_001},  # beyond the raised 10,000,000
        {"catastrophic_rate": None, "catastrophic_per_person": 100_001},  # beyond 1,000 元 raised a head
        {"dip_budget_amount": 3_000_000},  # and the rate
        {"dip_budget_rate": None},
        {"dip_budget_rate": None, "dip_budget_amount": 8_700_001},  # beyond the fund 8,700,000
        # within the fund, but with the capitation pool beyond community 1's budget:
        # 4,800,000 + 1,200,000 > 5,220,000
        {"dip_budget_rate": None, "dip_budget_amount": 8_000_000},
    ):
        r = await c.post(url, json=parameters(w, (60, 40), **bad), headers=officer(w))
        assert r.status_code == 422, (bad, r.text)
        problem = r.json()
        assert problem["type"].endswith("/parameters-do-not-add-up"), problem
        assert problem["title_zh"] and problem["title_en"]
    assert (await c.get(url, headers=officer(w))).json() == []  # nothing stored

    body = parameters(w, (60, 40), **amounts, dip_budget_rate=None, dip_budget_amount=3_000_001)
    b1, b2 = await open_year(c, w, AMOUNTS_YEAR, body)
    lines = labelled(b1)
    # catastrophic 6,000 × 100 insured = 600,000; reserve 5 % of the raised 10,000,000 = 500,000;
    # the fund 10,000,000 − 600,000 − 500,000 = 8,900,000 → 60 : 40 = 5,340,000 and 3,560,000
    assert lines["catastrophic_basis:per_person"] == 6_000 and lines["catastrophic_share"] == -600_000
    assert lines["community_fund"] == 8_900_000
    assert (b1["amount"], b2["amount"]) == (5_340_000, 3_560_000)
    # the county's DIP amount 3,000,001 split like the fund: 1,800,000.6 and 1,200,000.4 → the fen to 1
    assert lines["dip_basis:county_amount"] == 3_000_001
    assert (b1["dip_budget"], b2["dip_budget"]) == (1_800_001, 1_200_000)
    assert lines["other_care"] == 5_340_000 - 1_200_000 - 1_800_001
    stored = (await c.get(url, headers=officer(w))).json()[0]["parameters"]
    assert stored["catastrophic_per_person"] == 6_000 and stored["catastrophic_rate"] is None


async def test_a_score_of_0_costs_the_whole_deposit_and_the_fund_bears_only_its_share_of_the_overspend(
    billing_client: AsyncClient, billing_app: FastAPI, county: World
) -> None:
    c, w = billing_client, county
    y = DEPOSIT_YEAR
    # 6 × 1,000 元 = 600,000; catastrophic 10 % = 60,000; the reserve waived (balance 600 ≥ 6 × 100):
    # 540,000, 270,000 each; the deposit 5 % = 13,500 a year each
    body = parameters(w, (3, 3), catastrophic_rate="0.10", accumulated_balance=600, monthly_payout=100)
    b1, b2 = await open_year(c, w, y, body)
    assert (b1["amount"], b2["amount"]) == (270_000, 270_000)
    for month in range(1, 13):
        await run(c, w, f"{y}/prepayments/{month}")
    with clock_in(billing_app, y):
        # each community's resident treated at the other community's hospital, unreferred, at the county
        # tier: 70 % of (600,000 − 60,000) = 378,000 charged to the resident's community
        for hospital, resident in (("hospital2", "resident1"), ("hospital1", "resident2")):
            out = await post_claims(
                c,
                w,
                hospital,
                [
                    claim(
                        w,
                        f"D{y}-{resident}",
                        hospital,
                        resident,
                        "inpatient",
                        f"{y}-02-10",
                        600_000,
                        dip_group="J18-1",
                        dip_points="500",
                    )
                ],
            )
            assert out["insurance_share"] == 378_000
        done = await run(
            c, w, f"{y}/settlement", {"scores": {w.ids["community1"]: "0", w.ids["community2"]: 100}}
        )
    s1, s2 = (
        next(x for x in done["journals"] if x["community_id"] == w.ids[k])
        for k in ("community1", "community2")
    )
    # both spent capitation 60,000 + outside care 378,000 = 438,000 on 270,000: overspend 168,000, the
    # fund bearing half, 84,000, whatever the score
    for s in (s1, s2):
        assert (s["overspend"], s["community_bears"], s["fund_bears"]) == (168_000, 84_000, 84_000)
        assert s["spent"] == 438_000
    # then the deposit: score 0 keeps all 13,500, score 100 returns all of it
    assert (s1["deposit_kept"], s1["community_pays"]) == (13_500, 84_000 + 13_500)
    assert (s2["deposit_returned"], s2["community_pays"]) == (13_500, 84_000)
    assert s1["community_pays"] - s2["community_pays"] == 13_500  # the whole deposit, not half of it
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/{y}/trial-balance", headers=officer(w))).json()
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert tb["balanced"] and accounts["fund.overspend_borne"] == -168_000
    assert accounts["fund.deposit_forfeited"] == 13_500
    assert accounts["community.overspend_borne"] == -(97_500 + 84_000)
    assert accounts["community.cash"] == accounts["community.deposit"] == 0


async def test_a_100_fen_budget_withholds_5_fen_over_the_year(
    billing_client: AsyncClient, county: World
) -> None:
    c, w = billing_client, county
    y = SMALL_YEAR
    # 2 insured × (50 + 50) = 200 fen, no catastrophic share, the reserve waived: 100 fen a community
    body = parameters(
        w,
        (1, 1),
        individual_contribution=50,
        fiscal_subsidy=50,
        catastrophic_rate="0",
        accumulated_balance=600,
        monthly_payout=100,
    )
    b1, _ = await open_year(c, w, y, body)
    assert b1["amount"] == 100
    runs = []
    for month in range(1, 13):
        done = await run(c, w, f"{y}/prepayments/{month}")
        runs.append(next(x for x in done["journals"] if x["community_id"] == w.ids["community1"]))
    # 100 ÷ 12 → 9, 9, 9, 9, 8 × 8; the year's deposit 5 % = 5 fen → 1 fen in each of the first 5 months
    # (each month's own 5 % of 8 or 9 fen would round to 0: nothing withheld all year)
    assert [x["gross"] for x in runs] == [9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8]
    assert [x["deposit"] for x in runs] == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/{y}/trial-balance", headers=officer(w))).json()
    assert {a["account"]: a["balance"] for a in tb["accounts"]}["community.deposit"] == 5 + 5
    # the derivation's figures are the runs': January's prepayment and deposit, and the year's deposit
    lines = labelled(b1)
    assert (lines["monthly_prepayment"], lines["monthly_deposit"]) == (runs[0]["gross"], runs[0]["deposit"])
    assert lines["quality_deposit"] == 5
