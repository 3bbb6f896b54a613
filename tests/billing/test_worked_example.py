"""The worked example, end to end through the billing API on the real database, with the county and the
referral arriving through Kafka. Every figure is computed by hand in the comments (fen)."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, his, officer, open_year, parameters, post_claims, run


async def statement(c: AsyncClient, w: World, community: str, year: int) -> dict[str, Any]:
    r = await c.get(f"/v1/communities/{w.ids[community]}/statement?year={year}", headers=officer(w))
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_year_with_a_surplus(billing_client: AsyncClient, county: World) -> None:
    c, w = billing_client, county
    # 100 covered residents × (400 + 600 元) = 10,000,000; catastrophic 8 % = 800,000; the risk reserve
    # read literally (以筹资总额为基数, the default): 5 % of the raised total 10,000,000 = 500,000; the
    # communities' fund 10,000,000 − 800,000 − 500,000 = 8,700,000, split 60 : 40
    # (the alternative reading, 5 % of 9,200,000 = 460,000: test_the_other_reserve_reading below)
    b1, b2 = await open_year(c, w, 2026, parameters(w, (60, 40)))
    lines = {x["label"]: x["fen"] for x in b1["derivation"]}
    assert lines["raised_total"] == 10_000_000 and lines["catastrophic_share"] == -800_000
    assert lines["catastrophic_basis:rate"] == 10_000_000  # 8 % of the raised total
    assert lines["risk_reserve_base:raised_total"] == 10_000_000 and lines["risk_reserve"] == -500_000
    assert lines["community_fund"] == 8_700_000
    assert (b1["amount"], b2["amount"]) == (5_220_000, 3_480_000)
    assert (b1["capitation_pool"], b2["capitation_pool"]) == (1_200_000, 800_000)  # covered × 400 元 × 50 %
    assert (b1["dip_budget"], b2["dip_budget"]) == (2_088_000, 1_392_000)  # 40 % of the budget
    assert lines["dip_basis:rate"] == 5_220_000
    # 5,220,000 ÷ 12 = 435,000 a month; the year's deposit 5 % = 261,000, 21,750 a month
    assert lines["monthly_prepayment"] == 435_000 and lines["monthly_deposit"] == 21_750
    assert lines["quality_deposit"] == 261_000

    for month in range(1, 13):
        done = await run(c, w, f"2026/prepayments/{month}")
        assert done["posted"]
        mine = next(x for x in done["journals"] if x["community_id"] == w.ids["community1"])
        assert (mine["gross"], mine["deposit"]) == (435_000, 21_750)  # as the derivation says
    again = await run(c, w, "2026/prepayments/1")
    assert again["posted"] is False  # twice changes nothing

    ref = w.ids["referral"]  # village1 → hospital1, accepted
    village = await post_claims(
        c,
        w,
        "village1",
        [
            # village tier: deductible 10,000, then 90 % of 40,000 = 36,000
            claim(
                w,
                "V-1",
                "village1",
                "resident1",
                "outpatient",
                "2026-03-02",
                50_000,
                referral_id=ref,
                diagnosis_icd10="I20.0",
            ),
        ],
    )
    assert (
        village["claims"][0]["insurance_share"] == 36_000
        and village["claims"][0]["deductible_used"] == 10_000
    )
    county_claims = await post_claims(
        c,
        w,
        "hospital1",
        [
            # referred: only the rest of the county deductible (60,000 − 10,000), then 70 % of 450,000
            claim(
                w,
                "H-1",
                "hospital1",
                "resident1",
                "inpatient",
                "2026-03-05",
                500_000,
                referral_id=ref,
                diagnosis_icd10="I20.0",
                dip_group="I20-1",
                dip_points="1000",
            ),
            # not referred, grassroots-catalogue disease (K29) at county level: the lower 50 % on 40,000
            claim(
                w,
                "H-2",
                "hospital1",
                "resident3",
                "outpatient",
                "2026-03-06",
                100_000,
                diagnosis_icd10="K29.7",
            ),
        ],
    )
    h1, h2 = county_claims["claims"]
    assert (h1["deductible_used"], h1["insurance_share"], h1["referred"]) == (50_000, 315_000, True)
    assert (h2["deductible_used"], h2["ratio"], h2["insurance_share"]) == (60_000, "0.5000", 20_000)
    outside = await post_claims(
        c,
        w,
        "hospital2",
        [
            # resident1 belongs to community 1: treated by community 2's hospital, charged to community 1
            claim(
                w,
                "H2-1",
                "hospital2",
                "resident1",
                "inpatient",
                "2026-03-08",
                300_000,
                dip_group="J18-1",
                dip_points="600",
            ),
        ],
    )
    assert outside["claims"][0]["insurance_share"] == 168_000 and outside["claims"][0]["out_of_community"]
    townships = await post_claims(
        c,
        w,
        "township1",
        [
            # a grassroots disease group: weighted 1.0 at every tier (同病同价) → 200 points
            claim(
                w,
                "T1-1",
                "township1",
                "resident3",
                "inpatient",
                "2026-03-10",
                50_000,
                diagnosis_icd10="K29.7",
                dip_group="K29-1",
                dip_points="200",
            ),
        ],
    )
    assert townships["claims"][0]["weighted_points"] == "200.0000"
    t2 = await post_claims(
        c,
        w,
        "township2",
        [
            claim(
                w,
                "T2-1",
                "township2",
                "resident2",
                "inpatient",
                "2026-03-12",
                80_000,
                dip_group="J18-1",
                dip_points="300",
            ),
        ],
    )
    assert t2["claims"][0]["weighted_points"] == "255.0000"  # 300 × 0.85 township coefficient

    # reconciliation: a HIS lists its own claims with their total (it cannot look at another hospital's)
    mine = (await c.get("/v1/claims?year=2026&month=3", headers=his(w, "hospital1"))).json()
    assert (mine["total"], mine["insurance_share"]) == (2, 315_000 + 20_000)
    other = (
        await c.get(f"/v1/claims?institution_id={w.ids['hospital2']}", headers=his(w, "hospital1"))
    ).json()
    assert {x["institution_id"] for x in other["items"]} == {w.ids["hospital1"]}
    outside = (
        await c.get(
            f"/v1/claims?year=2026&out_of_community=true&community_id={w.ids['community1']}",
            headers=officer(w),
        )
    ).json()
    assert (outside["total"], outside["insurance_share"]) == (1, 168_000)
    assert (await c.get("/v1/claims", headers=w.token("family_doctor", "township1"))).status_code == 403
    for month in (1, 2, 3):
        await run(c, w, f"2026/months/{month}/close")
    march = {x["community_id"]: x for x in (await run(c, w, "2026/months/3/close"))["journals"]}
    assert march == {}  # already closed
    r = await c.get(f"/v1/insurance-years/{COUNTY}/2026/evaluation?quarter=1", headers=officer(w))
    q1 = {x["community_id"]: x for x in r.json()}[w.ids["community1"]]
    # outside care 168,000 + provisional DIP (1000 + 200 points × 100) 120,000 + capitation 3 × 100,000,
    # against what January to March prepaid, 3 × 435,000; projected 4 × 588,000 against 5,220,000
    assert q1["spent"] == 588_000 and q1["elapsed_budget"] == 1_305_000
    assert (
        q1["projected_spend"] == 2_352_000
        and q1["projected_result"] == 2_868_000
        and q1["flag"] == "on_track"
    )

    done = await run(
        c, w, "2026/settlement", {"scores": {w.ids["community1"]: "90", w.ids["community2"]: "100"}}
    )
    s1, s2 = (
        next(x for x in done["journals"] if x["community_id"] == w.ids[k])
        for k in ("community1", "community2")
    )
    # community 1: DIP budget 2,088,000 over 1,200 points → 1,740 fen a point
    assert s1["dip_point_value"] == "1740.0000" and s1["dip_final"] == 2_088_000
    # contract fee 7.5 % × 40,000 = 3,000 a year: one contract, in force on all twelve first days
    assert (s1["contract_months"], s1["contract_fees"]) == (12, 3_000)
    # first spending against the budget: 5,220,000 − (outside 168,000 + DIP 2,088,000 + capitation
    # 1,200,000 + fees 3,000 = 3,459,000) = 1,761,000 surplus
    assert (s1["spent"], s1["surplus"], s1["overspend"]) == (3_459_000, 1_761_000, 0)
    # then the deposit, 12 × 21,750 = 261,000: score 90 → 234,900 back, 26,100 kept out of the surplus
    assert (s1["deposit"], s1["deposit_returned"], s1["deposit_kept"]) == (261_000, 234_900, 26_100)
    assert (s1["surplus_shared"], s1["community_pays"]) == (1_734_900, 0)  # 1,761,000 − 26,100
    # shared by tier weight × what each member was paid: hospital 1 × 1,740,000; township
    # 1.5 × (DIP 348,000 + fee 3,000); village 2 × 1,200,000 → 1,734,900 × 1,740,000 / 4,666,500
    # = 646,892.96…, × 526,500 / 4,666,500 = 195,740.88…, × 2,400,000 / 4,666,500 = 892,266.15…; the two
    # fen of remainder to the two largest fractions (hospital, township)
    assert s1["surplus_shares"] == {
        w.ids["hospital1"]: 646_893,
        w.ids["township1"]: 195_741,
        w.ids["village1"]: 892_266,
    }
    # community 2: 3,480,000 − DIP 1,392,000 − capitation 800,000 − fee 3,000 = 1,285,000, deposit all
    # back; DIP 1,392,000 over township 2's 255 points = 5,458.8235…
    assert s2["surplus"] == 1_285_000 and s2["surplus_shared"] == 1_285_000
    assert s2["dip_point_value"] == "5458.8235"
    # township 1.5 × 1,395,000 = 2,092,500 and village 2 × 800,000 = 1,600,000 of 3,692,500:
    # 728,195.66… and 556,804.33… → the fen of remainder to the township
    assert s2["surplus_shares"] == {w.ids["township2"]: 728_196, w.ids["village2"]: 556_804}

    st = await statement(c, w, "community1", 2026)
    assert st["spent"] == 168_000 + 2_088_000 + 1_200_000 + 3_000
    assert {k: v for k, v in st["balances"].items() if k.startswith("community.")} == {
        "community.budget": 0,
        "community.cash": 0,
        "community.deposit": 0,
    }
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/2026/trial-balance", headers=officer(w))).json()
    assert tb["balanced"] and tb["total_debit"] == tb["total_credit"] > 0
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert accounts["fund.contributions"] == -10_000_000 and accounts["fund.deposit_forfeited"] == 26_100
    assert accounts["fund.risk_reserve"] == 500_000
    assert sum(accounts.values()) == 0
    # a settled year takes no more claims, prepayments or settlement
    late = await post_claims(
        c,
        w,
        "township1",
        [claim(w, "T1-late", "township1", "resident3", "outpatient", "2026-12-30", 1_000)],
        status=409,
    )
    assert late["errors"][0]["slug"] == "period-closed"
    assert (await run(c, w, "2026/prepayments/1", status=409))["type"].endswith("year-settled")
    assert (await run(c, w, "2026/settlement", {"scores": {}}))["posted"] is False


async def test_year_with_an_overspend(billing_client: AsyncClient, county: World) -> None:
    c, w = billing_client, county
    # 6 × 1,000 元 = 600,000; catastrophic 10 % = 60,000; the reserve is waived (balance 600 ≥ 6 × 100)
    body = parameters(w, (3, 3), catastrophic_rate="0.10", accumulated_balance=600, monthly_payout=100)
    b1, b2 = await open_year(c, w, 2027, body)
    assert (b1["amount"], b2["amount"]) == (270_000, 270_000)
    lines = {x["label"]: x["fen"] for x in b1["derivation"]}
    assert lines["risk_reserve"] == 0 and lines["risk_reserve_base:raised_total"] == 600_000
    for month in range(1, 13):
        await run(c, w, f"2027/prepayments/{month}")  # 22,500 a month, 1,125 withheld
    out = await post_claims(
        c,
        w,
        "hospital2",
        [
            # 70 % of (600,000 − 60,000) = 378,000, charged to community 1
            claim(
                w,
                "H2-2027",
                "hospital2",
                "resident1",
                "inpatient",
                "2027-02-10",
                600_000,
                dip_group="J18-1",
                dip_points="500",
            ),
        ],
    )
    assert out["insurance_share"] == 378_000
    done = await run(
        c, w, "2027/settlement", {"scores": {w.ids["community1"]: "80", w.ids["community2"]: "100"}}
    )
    s1, s2 = (
        next(x for x in done["journals"] if x["community_id"] == w.ids[k])
        for k in ("community1", "community2")
    )
    # community 1: spending first, 270,000 − (capitation 60,000 + outside 378,000) = −168,000, shared 50 : 50
    assert (s1["spent"], s1["overspend"]) == (438_000, 168_000)
    assert (s1["community_bears"], s1["fund_bears"]) == (84_000, 84_000)
    # then the deposit 12 × 1,125 = 13,500 by the score 80: 10,800 back, 2,700 kept, all of it the
    # community's (counted as spending it would have been half the fund's)
    assert (s1["deposit_returned"], s1["deposit_kept"], s1["community_pays"]) == (10_800, 2_700, 86_700)
    assert s1["contract_fees"] == 0  # the 2026 contracts ended on 2026-12-31
    # community 2: 270,000 − 60,000 = 210,000, all to the one member that was paid (village2)
    assert s2["surplus"] == 210_000 and s2["surplus_shares"] == {w.ids["village2"]: 210_000}
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/2027/trial-balance", headers=officer(w))).json()
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert tb["balanced"] and accounts["fund.overspend_borne"] == -84_000
    assert accounts["community.overspend_borne"] == -86_700 and accounts["community.cash"] == 0
    assert accounts["fund.deposit_forfeited"] == 2_700


async def test_the_other_reserve_reading(billing_client: AsyncClient, county: World) -> None:
    """The same county with the reserve read as the engine read it before it was a parameter: 5 % of what
    is left after catastrophic insurance."""
    c, w = billing_client, county
    body = parameters(w, (60, 40), risk_reserve_base="after_catastrophic")
    b1, b2 = await open_year(c, w, 2040, body)
    lines = {x["label"]: x["fen"] for x in b1["derivation"]}
    # 10,000,000 − catastrophic 800,000 = 9,200,000, the reserve's base; 5 % = 460,000; the communities'
    # fund 9,200,000 − 460,000 = 8,740,000 (the literal reading: 8,700,000, 40,000 less)
    assert lines["raised_total"] == 10_000_000 and lines["catastrophic_share"] == -800_000
    assert lines["risk_reserve_base:after_catastrophic"] == 9_200_000 and lines["risk_reserve"] == -460_000
    assert "risk_reserve_base:raised_total" not in lines and lines["community_fund"] == 8_740_000
    # 60 : 40 → 5,244,000 and 3,496,000; DIP 40 % → 2,097,600 and 1,398,400
    assert (b1["amount"], b2["amount"]) == (5_244_000, 3_496_000)
    assert (b1["dip_budget"], b2["dip_budget"]) == (2_097_600, 1_398_400)
    # 5,244,000 ÷ 12 = 437,000 a month, the year's deposit 262,200 → 21,850 a month
    assert (lines["monthly_prepayment"], lines["quality_deposit"], lines["monthly_deposit"]) == (
        437_000,
        262_200,
        21_850,
    )
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/2040/trial-balance", headers=officer(w))).json()
    assert {a["account"]: a["balance"] for a in tb["accounts"]}["fund.risk_reserve"] == 460_000
