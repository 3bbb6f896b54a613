"""Bad input gets a clear 4xx problem+json in Chinese and English, and nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, his, officer, open_year, parameters, post_claims, run

YEAR = 2029
TODAY_YEAR = 2033  # the year of the future-date test, whose clock stands in it
WEIGHTS = {"county": "1", "township": "1.5", "community": "1.5", "village": "2"}  # a value for every tier


@contextmanager
def clock_at(app: FastAPI, at: datetime) -> Iterator[None]:
    """Billing's clock (a FixedClock shared by the session) set to `at`, and back afterwards."""
    before = app.state.clock.at
    app.state.clock.at = at
    try:
        yield
    finally:
        app.state.clock.at = before


async def claims_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(sa.text("SELECT count(*) FROM claims WHERE year = :y"), {"y": YEAR}) or 0
        )


def assert_problem(r_json: dict[str, object], slug: str) -> None:
    assert str(r_json["type"]).endswith("/" + slug), r_json
    assert r_json["title_zh"] and r_json["title_en"]


async def test_parameters_that_do_not_add_up(billing_client: AsyncClient, county: World) -> None:
    c, w = billing_client, county
    url = f"/v1/insurance-years/{COUNTY}/2031/parameters"
    for bad, slug in (
        (
            parameters(w, (10, 10), catastrophic_rate="0.96"),
            "parameters-do-not-add-up",
        ),  # + 5 % reserve > 100 %
        (
            parameters(w, (10, 10), outpatient_pool_rate="0.95", contract_fee_rate="0.10"),
            "parameters-do-not-add-up",
        ),
        (
            parameters(w, (10, 10), unreferred_county_ratio="0.80"),
            "parameters-do-not-add-up",
        ),  # above county 70 %
        (parameters(w, (10, 10), catastrophic_rate="1.5"), "validation-error"),
        # a weight beyond 100 (every tier given, this one was stored, and overflowed at the settlement)
        (parameters(w, (10, 10), surplus_weights={**WEIGHTS, "county": "1e99999"}), "validation-error"),
        (
            parameters(w, (10, 10), dip_tier_coefficients={**WEIGHTS, "village": "1e99999"}),
            "validation-error",
        ),
        (parameters(w, (10, 10), surplus_weights={**WEIGHTS, "county": "1.00001"}), "validation-error"),
        (parameters(w, (10, 10), individual_contribution=-1), "validation-error"),
        (parameters(w, (10, 10), individual_contribution=400.5), "validation-error"),
        (parameters(w, (10, 10), individual_contribution="40000"), "validation-error"),
        (
            parameters(
                w, (10, 10), communities=[{"community_id": str(uuid.uuid4()), "covered_residents": 5}]
            ),
            "unknown-community",
        ),
    ):
        r = await c.post(url, json=bad, headers=officer(w))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert_problem(r.json(), slug)
    # a HIS system cannot set parameters, and nothing was stored by any of the above
    r = await c.post(url, json=parameters(w, (10, 10)), headers=his(w, "hospital1"))
    assert r.status_code == 403
    r = await c.get(url, headers=officer(w))
    assert r.json() == []
    # budgets need parameters; DIP + capitation beyond the budget is refused when deriving
    assert_problem(await run(c, w, "2031/budgets", status=409), "no-parameters")


async def test_bad_claims_write_nothing(
    billing_client: AsyncClient, billing_app: FastAPI, billing_engine: AsyncEngine, county: World
) -> None:
    with clock_at(billing_app, datetime(YEAR, 12, 31, 2, 0, tzinfo=UTC)):  # the claims below are not future
        await bad_claims_write_nothing(billing_client, billing_engine, county)


async def bad_claims_write_nothing(c: AsyncClient, billing_engine: AsyncEngine, w: World) -> None:
    await open_year(c, w, YEAR, parameters(w, (10, 10)))
    good = claim(w, "G-1", "township1", "resident1", "outpatient", f"{YEAR}-02-01", 10_000)
    before = await claims_count(billing_engine)
    cases = [
        ({**good, "eligible_cost": -1}, 422, "validation-error"),
        ({**good, "eligible_cost": 10.5}, 422, "validation-error"),
        ({**good, "eligible_cost": 20_000, "total_cost": 10_000}, 422, "eligible-over-total"),
        ({**good, "resident_id": str(uuid.uuid4())}, 422, "unknown-resident"),
        ({**good, "kind": "inpatient"}, 422, "dip-needed"),
        # another resident's referral (one billing has not heard of yet is priced provisionally instead)
        (
            {**good, "referral_id": w.ids["referral"], "resident_id": w.ids["resident3"]},
            422,
            "unknown-referral",
        ),
        ({**good, "service_date": f"{YEAR - 10}-01-01"}, 422, "year-not-budgeted"),
        ({**good, "service_date": f"{YEAR + 1}-01-01"}, 422, "service-date-in-future"),
        ({**good, "diagnosis_icd10": "not-icd"}, 422, "validation-error"),
    ]
    for bad, status, slug in cases:
        # one bad claim in a batch with a good one: the whole batch is refused
        r = await c.post(
            "/v1/claims:batch",
            json={"claims": [good, {**bad, "claim_no": "B-1"}]},
            headers=his(w, "township1"),
        )
        assert r.status_code == status, (slug, r.text)
        body = r.json()
        assert_problem(body if slug == "validation-error" else body["errors"][0], slug)
    assert await claims_count(billing_engine) == before

    # another institution's claim, or a caller that is not a HIS system: 403
    r = await c.post("/v1/claims", json=good, headers=his(w, "township2"))
    assert r.status_code == 403
    r = await c.post("/v1/claims", json=good, headers=w.token("family_doctor", "township1"))
    assert r.status_code == 403
    # a HIS unknown to billing (no registry event for it)
    unknown = str(uuid.uuid4())
    stranger = {"Authorization": "Bearer " + w.signer.mint("his_system", institution_id=unknown)}
    r = await c.post("/v1/claims", json={**good, "institution_id": unknown}, headers=stranger)
    assert r.status_code == 422
    assert_problem(r.json(), "unknown-institution")
    assert await claims_count(billing_engine) == before

    # duplicate claim number with the same content: stored once; with other content: refused
    first = await post_claims(c, w, "township1", [good])
    again = await post_claims(c, w, "township1", [good, good])
    assert (first["created"], again["created"], again["duplicates"]) == (1, 0, 2)
    assert again["claims"][0]["id"] == first["claims"][0]["id"] and again["claims"][0]["duplicate"]
    r = await c.post(
        "/v1/claims:batch", json={"claims": [{**good, "eligible_cost": 9_000}]}, headers=his(w, "township1")
    )
    assert r.status_code == 422 and r.json()["errors"][0]["slug"] == "claim-number-reused"
    assert await claims_count(billing_engine) == before + 1

    # a closed month takes no claims; the same request replayed with its Idempotency-Key is not doubled
    await run(c, w, f"{YEAR}/months/1/close")
    assert_problem(await run(c, w, f"{YEAR}/months/3/close", status=409), "month-out-of-order")
    late = claim(w, "L-1", "township1", "resident1", "outpatient", f"{YEAR}-01-20", 10_000)
    closed = await post_claims(c, w, "township1", [late], status=409)
    assert closed["errors"][0]["slug"] == "period-closed"
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    new = claim(w, "K-1", "township1", "resident1", "outpatient", f"{YEAR}-02-03", 10_000)
    r1 = await c.post("/v1/claims:batch", json={"claims": [new]}, headers=his(w, "township1") | key)
    r2 = await c.post("/v1/claims:batch", json={"claims": [new]}, headers=his(w, "township1") | key)
    assert r1.json() == r2.json() and r2.headers.get("Idempotent-Replayed") == "true"
    assert await claims_count(billing_engine) == before + 2

    # settlement before all prepayments, and scores out of range
    assert_problem(
        await run(
            c,
            w,
            f"{YEAR}/settlement",
            {"scores": {w.ids["community1"]: "90", w.ids["community2"]: "90"}},
            status=409,
        ),
        "prepayments-missing",
    )
    assert_problem(
        await run(c, w, f"{YEAR}/settlement", {"scores": {w.ids["community1"]: "101"}}, status=422),
        "scores-needed",
    )
    assert_problem(await run(c, w, f"{YEAR}/prepayments/13", status=422), "validation-error")


async def test_claims_dated_after_today_are_refused(
    billing_client: AsyncClient, billing_app: FastAPI, billing_engine: AsyncEngine, county: World
) -> None:
    """Today is the date in China: at 00:30 on 1 July in Beijing (still 30 June in UTC) a claim for
    1 July is fine and one for 2 July is not, alone or in a batch; nothing refused is stored."""
    c, w = billing_client, county
    await open_year(c, w, TODAY_YEAR, parameters(w, (10, 10)))

    def dated(no: str, day: str) -> dict[str, Any]:
        return claim(w, no, "township1", "resident1", "outpatient", f"{TODAY_YEAR}-{day}", 10_000)

    async def stored() -> int:
        async with billing_engine.connect() as conn:
            q = sa.text("SELECT count(*) FROM claims WHERE year = :y")
            return int(await conn.scalar(q, {"y": TODAY_YEAR}) or 0)

    with clock_at(billing_app, datetime(TODAY_YEAR, 6, 30, 16, 30, tzinfo=UTC)):
        tomorrow = await c.post("/v1/claims", json=dated("F-1", "07-02"), headers=his(w, "township1"))
        assert tomorrow.status_code == 422, tomorrow.text
        assert tomorrow.headers["content-type"].startswith("application/problem+json")
        assert_problem(tomorrow.json(), "service-date-in-future")
        far = await c.post("/v1/claims", json=dated("F-2", "12-31"), headers=his(w, "township1"))
        assert far.status_code == 422 and far.json()["type"].endswith("/service-date-in-future")
        batch = {"claims": [dated("F-3", "06-30"), dated("F-4", "07-02")]}
        r = await c.post("/v1/claims:batch", json=batch, headers=his(w, "township1"))
        assert r.status_code == 422, r.text
        assert [(e["claim_no"], e["slug"]) for e in r.json()["errors"]] == [("F-4", "service-date-in-future")]
        assert_problem(r.json()["errors"][0], "service-date-in-future")
        assert await stored() == 0
        today = await c.post("/v1/claims", json=dated("T-1", "07-01"), headers=his(w, "township1"))
        assert today.status_code == 201, today.text
        assert await stored() == 1
