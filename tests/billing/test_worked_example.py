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
    # 100 covered residents × (400 + 600 元) = 10,000,000; catastrophic 8 % = 800,000;
    # reserve 5 % of 9,200,000 = 460,000; the communities' fund 8,740,000, split 60 : 40
    b1, b2 = await open_year(c, w, 2026, parameters(w, (60, 40)))
    lines = {x["label"]: x["fen"] for x in b1["derivation"]}
    assert lines["raised_total"] == 10_000_000 and lines["catastrophic_share"] == -800_000
    assert lines["risk_reserve"] == -460_000 and lines["community_fund"] == 8_740_000
    assert (b1["amount"], b2["amount"]) == (5_244_000, 3_496_000)
    assert (b1["capitation_pool"], b2["capitation_pool"]) == (1_200_000, 800_000)  # covered × 400 元 × 50 %
    assert (b1["dip_budget"], b2["dip_budget"]) == (2_097_600, 1_398_400)  # 40 % of the budget
    assert lines["monthly_prepayment"] == 437_000 and lines["monthly_deposit"] == 21_850

    for month in range(1, 13):
        done = await run(c, w, f"2026/prepayments/{month}")
        assert done["posted"]
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
    # outside care 168,000 + provisional DIP (1000 + 200 points × 100) 120,000 + capitation 3 × 100,000
    assert q1["spent"] == 588_000 and q1["elapsed_budget"] == 1_311_000
    assert (
        q1["projected_spend"] == 2_352_000
        and q1["projected_result"] == 2_892_000
        and q1["flag"] == "on_track"
    )

    done = await run(
        c, w, "2026/settlement", {"scores": {w.ids["community1"]: "90", w.ids["community2"]: "100"}}
    )
    s1, s2 = (
        next(x for x in done["journals"] if x["community_id"] == w.ids[k])
        for k in ("community1", "community2")
    )
    # community 1: DIP budget 2,097,600 over 1,200 points → 1,748 fen a point
    assert s1["dip_point_value"] == "1748.0000" and s1["dip_final"] == 2_097_600
    # deposit 12 × 21,850 = 262,200, score 90 → 235,980 back; contract fee 7.5 % × 40,000 = 3,000 (one contract)
    assert (s1["deposit"], s1["deposit_returned"], s1["contract_fees"]) == (262_200, 235_980, 3_000)
    # cash 12 × 415,150 − DIP 2,097,600 − capitation 1,200,000 − fees 3,000 − outside 168,000 + 235,980
    assert s1["surplus"] == 1_749_180 and s1["overspend"] == 0
    # shared by tier weight × what each member was paid: hospital 1 × 1,748,000; township 1.5 × 352,600;
    # village 2 × 1,200,000 → largest remainder
    assert s1["surplus_shares"] == {
        w.ids["hospital1"]: 653_759,
        w.ids["township1"]: 197_811,
        w.ids["village1"]: 897_610,
    }
    # community 2: 3,496,000 − DIP 1,398,400 − capitation 800,000 − fee 3,000, deposit all back
    assert s2["surplus"] == 1_294_600 and s2["dip_point_value"] == "5483.9216"
    assert s2["surplus_shares"] == {w.ids["township2"]: 735_091, w.ids["village2"]: 559_509}

    st = await statement(c, w, "community1", 2026)
    assert st["spent"] == 168_000 + 2_097_600 + 1_200_000 + 3_000
    assert {k: v for k, v in st["balances"].items() if k.startswith("community.")} == {
        "community.budget": 0,
        "community.cash": 0,
        "community.deposit": 0,
    }
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/2026/trial-balance", headers=officer(w))).json()
    assert tb["balanced"] and tb["total_debit"] == tb["total_credit"] > 0
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert accounts["fund.contributions"] == -10_000_000 and accounts["fund.deposit_forfeited"] == 26_220
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
    assert {x["label"]: x["fen"] for x in b1["derivation"]}["risk_reserve"] == 0
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
    # community 1: cash 12 × 21,375 = 256,500 − capitation 60,000 − outside 378,000 + deposit 13,500 × 80 %
    assert (s1["deposit_returned"], s1["overspend"]) == (10_800, 170_700)
    assert (s1["community_bears"], s1["fund_bears"]) == (85_350, 85_350)  # shared 50 : 50
    assert s1["contract_fees"] == 0  # the 2026 contracts ended on 2026-12-31
    # community 2: 256,500 − 60,000 + 13,500 = 210,000, all to the one member that was paid (village2)
    assert s2["surplus"] == 210_000 and s2["surplus_shares"] == {w.ids["village2"]: 210_000}
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/2027/trial-balance", headers=officer(w))).json()
    accounts = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert tb["balanced"] and accounts["fund.overspend_borne"] == -85_350
    assert accounts["community.overspend_borne"] == -85_350 and accounts["community.cash"] == 0
