"""Out-of-county care (转外就医, issue #14 point 14; 004 §十七): the insurance officer records the care the
agency settled outside the county — one record, or a batch such as the provincial settlement system's
monthly file — and each record is charged to the resident's community budget once (the same record
again is a duplicate), never in a settled or unbudgeted year, and reported per community and month by
destination, disease and referred or not."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway.domain.policy import match
from shared.principal import Role

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import his, officer, open_year, parameters, run

YEAR = 2017
SETTLED_YEAR = 2016
RACE_YEAR = 2014  # (2015 stays unbudgeted: refused below)
ZHENGZHOU = {
    "destination_name": "郑州大学第一附属医院",
    "destination_code": "H41010300001",
    "destination_province": "410000",
    "destination_city": "410100",
}
BEIJING = {
    "destination_name": "首都医科大学附属北京天坛医院",
    "destination_code": "H11010600002",
    "destination_province": "110000",
    "destination_city": "110100",
}


def record(
    w: World,
    no: str,
    resident: str,
    day: str,
    where: dict[str, str],
    icd: str,
    cost: tuple[int, int],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "record_no": no,
        "resident_id": w.ids[resident],
        "settled_on": day,
        **where,
        "diagnosis_icd10": icd,
        "referred": False,
        "total_cost": cost[0],
        "fund_share": cost[1],
        **extra,
    }


async def balances(c: AsyncClient, w: World, community: str, year: int) -> dict[str, int]:
    r = await c.get(f"/v1/communities/{w.ids[community]}/statement?year={year}", headers=officer(w))
    assert r.status_code == 200, r.text
    got: dict[str, int] = r.json()["balances"]
    return got


async def test_out_of_county_care_is_charged_once_and_reported(
    billing_client: AsyncClient, county: World
) -> None:
    c, w = billing_client, county
    [budget1, _] = await open_year(c, w, YEAR, parameters(w, (10, 10)))
    referred = {"referred": True, "referral_id": w.ids["referral"]}  # resident1's referral
    first = record(
        w, "OC-1", "resident1", f"{YEAR}-03-15", ZHENGZHOU, "I63.9", (800_000, 560_000), **referred
    )
    r = await c.post("/v1/out-of-county-care", json=first, headers=officer(w))
    assert r.status_code == 201, r.text
    one = r.json()
    assert (one["community_id"], one["month"], one["fund_share"], one["duplicate"]) == (
        w.ids["community1"],
        3,
        560_000,
        False,
    )

    # the provincial file of March and April, which repeats OC-1
    monthly = [
        record(w, "OC-2", "resident1", f"{YEAR}-03-20", BEIJING, "I61.0", (1_200_000, 700_000)),
        record(
            w, "OC-3", "resident2", f"{YEAR}-03-05", ZHENGZHOU, "C34.9", (400_000, 240_000), referred=True
        ),
        record(
            w, "OC-4", "resident1", f"{YEAR}-04-02", ZHENGZHOU, "I63.8", (300_000, 200_000), referred=True
        ),
        first,
    ]
    r = await c.post("/v1/out-of-county-care:batch", json={"records": monthly}, headers=officer(w))
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "duplicates": 1, "fund_share": 1_140_000, "records": None}
    # the file sent again charges nothing; the same number with other content is refused, whole
    r = await c.post(
        "/v1/out-of-county-care:batch?detail=true", json={"records": monthly}, headers=officer(w)
    )
    assert (r.json()["created"], r.json()["duplicates"], r.json()["fund_share"]) == (0, 4, 0)
    assert all(x["duplicate"] for x in r.json()["records"])
    changed = [{**monthly[0], "fund_share": 600_000}]
    r = await c.post("/v1/out-of-county-care:batch", json={"records": changed}, headers=officer(w))
    assert r.status_code == 422 and r.json()["type"].endswith("/record-number-reused"), r.text

    # charged to each resident's community budget (1,460,000 to community 1, 240,000 to community 2)
    assert (await balances(c, w, "community1", YEAR))["provider.out_of_county"] == 1_460_000
    assert (await balances(c, w, "community1", YEAR))["community.budget"] == budget1["amount"] - 1_460_000
    assert (await balances(c, w, "community2", YEAR))["provider.out_of_county"] == 240_000
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/{YEAR}/trial-balance", headers=officer(w))).json()
    assert tb["balanced"]
    assert {a["account"]: a["balance"] for a in tb["accounts"]}["provider.out_of_county"] == 1_700_000

    # the report, per community and settled month, read by the agency and the commission
    commission = {"Authorization": "Bearer " + w.signer.mint("commission_admin", subject="卫健委")}
    url = f"/v1/insurance-years/{COUNTY}/{YEAR}/out-of-county-care"
    r = await c.get(url, headers=commission)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["total"] == {"records": 4, "total_cost": 2_700_000, "fund_share": 1_700_000}
    cells = {(x["community_id"], x["month"]): x for x in report["communities"]}
    assert {k: v["fund_share"] for k, v in cells.items()} == {
        (w.ids["community1"], 3): 1_260_000,
        (w.ids["community1"], 4): 200_000,
        (w.ids["community2"], 3): 240_000,
    }
    march = cells[(w.ids["community1"], 3)]
    assert (march["records"], march["total_cost"]) == (2, 2_000_000)
    assert march["referred"] == {"records": 1, "total_cost": 800_000, "fund_share": 560_000}
    assert march["unreferred"] == {"records": 1, "total_cost": 1_200_000, "fund_share": 700_000}
    assert [(d["code"], d["province"], d["fund_share"]) for d in march["by_destination"]] == [
        ("H11010600002", "110000", 700_000),
        ("H41010300001", "410000", 560_000),
    ]
    assert sorted((d["icd10_category"], d["records"]) for d in march["by_disease"]) == [
        ("I61", 1),
        ("I63", 1),
    ]
    r = await c.get(f"{url}?month=4&community_id={w.ids['community1']}", headers=officer(w))
    assert [(x["month"], x["fund_share"]) for x in r.json()["communities"]] == [(4, 200_000)]
    # a hospital's HIS neither records nor reads it
    assert (
        await c.post("/v1/out-of-county-care", json=first, headers=his(w, "hospital1"))
    ).status_code == 403
    assert (await c.get(url, headers=his(w, "hospital1"))).status_code == 403


async def test_out_of_county_care_is_refused_when_it_cannot_be_charged(
    billing_client: AsyncClient, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, SETTLED_YEAR, parameters(w, (10, 10)))
    before = record(w, "OCS-0", "resident1", f"{SETTLED_YEAR}-05-01", BEIJING, "I21.0", (150_000, 100_000))
    r = await c.post("/v1/out-of-county-care", json=before, headers=officer(w))
    assert r.status_code == 201, r.text
    for month in range(1, 13):
        await run(c, w, f"{SETTLED_YEAR}/prepayments/{month}")
    scores = {w.ids["community1"]: "100", w.ids["community2"]: "100"}
    settled = await run(c, w, f"{SETTLED_YEAR}/settlement", {"scores": scores})
    # the settlement took the charge in: community 1's budget is used up to the fen, and its figures
    # report the out-of-county care charged in the year beside the care outside the community
    assert (await balances(c, w, "community1", SETTLED_YEAR))["community.budget"] == 0
    figures = {x["community_id"]: x for x in settled["journals"]}
    assert figures[w.ids["community1"]]["out_of_county"] == 100_000
    assert figures[w.ids["community2"]]["out_of_county"] == 0
    stored = await c.get(
        f"/v1/communities/{w.ids['community1']}/statement?year={SETTLED_YEAR}", headers=officer(w)
    )
    assert stored.json()["settlement"]["out_of_county"] == 100_000, stored.text

    cases = [
        (
            record(w, "OCS-1", "resident1", f"{SETTLED_YEAR}-06-01", BEIJING, "I21.0", (1, 1)),
            409,
            "year-settled",
        ),
        (record(w, "OCS-2", "resident1", "2015-06-01", BEIJING, "I21.0", (1, 1)), 422, "year-not-budgeted"),
        (
            record(w, "OCS-3", "resident1", "2035-02-01", BEIJING, "I21.0", (1, 1)),
            422,
            "settled-date-in-future",
        ),
        (
            record(w, "OCS-4", "resident1", "2017-02-01", BEIJING, "I21.0", (1, 2)),
            422,
            "fund-share-over-total",
        ),
        (
            record(
                w, "OCS-5", "resident1", "2017-02-01", BEIJING, "I21.0", (1, 1), referral_id=w.ids["referral"]
            ),
            422,
            "validation-error",  # a referral, but not referred
        ),
        (
            record(
                w,
                "OCS-6",
                "resident2",
                "2017-02-01",
                BEIJING,
                "I21.0",
                (1, 1),
                referred=True,
                referral_id=w.ids["referral"],
            ),
            422,
            "unknown-referral",  # resident 1's referral
        ),
        ({**before, "record_no": "OCS-7", "resident_id": w.ids["community1"]}, 422, "unknown-resident"),
    ]
    for body, status, slug in cases:
        r = await c.post("/v1/out-of-county-care", json=body, headers=officer(w))
        assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (status, slug), r.text
    r = await c.get(f"/v1/insurance-years/{COUNTY}/{SETTLED_YEAR}/out-of-county-care", headers=officer(w))
    assert r.json()["total"] == {"records": 1, "total_cost": 150_000, "fund_share": 100_000}


def test_the_gateway_audits_out_of_county_records_and_keeps_his_systems_out() -> None:
    for path in ("/v1/out-of-county-care", "/v1/out-of-county-care:batch"):
        rule = match("billing", path)
        assert rule is not None and rule.personal_data
        assert rule.roles == {Role.INSURANCE_OFFICER, Role.COMMISSION_ADMIN}
    report = match("billing", f"/v1/insurance-years/{COUNTY}/{YEAR}/out-of-county-care")
    assert report is not None and not report.personal_data  # figures per community, no resident


async def test_the_same_file_sent_twice_at_once_is_charged_once(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, RACE_YEAR, parameters(w, (10, 10)))
    file = {
        "records": [
            record(w, f"OCR-{n}", "resident1", f"{RACE_YEAR}-07-0{n}", BEIJING, "I21.0", (90_000, 50_000))
            for n in (1, 2, 3)
        ]
    }
    async with billing_engine.connect() as conn:
        tx = await conn.begin()  # the first recording waits here, the second behind it
        await conn.execute(
            sa.text("SELECT 1 FROM insurance_years WHERE county_code = :c AND year = :y FOR UPDATE"),
            {"c": COUNTY, "y": RACE_YEAR},
        )
        racing = [
            asyncio.create_task(c.post("/v1/out-of-county-care:batch", json=file, headers=officer(w)))
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)
        assert not any(t.done() for t in racing)
        await tx.commit()
    answers = [await t for t in racing]
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert sorted((r.json()["created"], r.json()["duplicates"]) for r in answers) == [(0, 3), (3, 0)]
    assert (await balances(c, w, "community1", RACE_YEAR))["provider.out_of_county"] == 150_000
