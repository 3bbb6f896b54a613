"""Claims racing a month close: a claim is either in the month's postings or refused as late — never
stored and left out. Shown deterministically: while a close holds the year (FOR UPDATE), a batch waits;
when the close commits, the batch is refused, and a batch already in holds the close back. And two
batches with the same new claims: stored once, the second told they are duplicates."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, his, officer, open_year, parameters

YEAR = 2034
RACE_YEAR = 2022


async def test_claims_wait_for_a_month_close_and_are_refused_after_it(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, YEAR, parameters(w, (10, 10)))

    def batch(month: int, tag: str) -> dict[str, object]:
        return {
            "claims": [
                claim(
                    w,
                    f"R-{tag}-{k}",
                    "hospital2",
                    "resident1",
                    "outpatient",
                    f"{YEAR}-{month:02d}-1{k}",
                    100_000,
                )
                for k in range(3)
            ]
        }

    first = await c.post("/v1/claims:batch", json=batch(1, "a"), headers=his(w, "hospital2"))
    assert first.status_code == 200
    async with billing_engine.connect() as conn:
        tx = await conn.begin()  # a month close in progress, as the service's close holds it
        await conn.execute(
            sa.text("SELECT 1 FROM insurance_years WHERE county_code = :c AND year = :y FOR UPDATE"),
            {"c": COUNTY, "y": YEAR},
        )
        late = asyncio.create_task(
            c.post("/v1/claims:batch", json=batch(1, "b"), headers=his(w, "hospital2"))
        )
        await asyncio.sleep(0.5)
        assert not late.done()  # the batch waits for the close instead of slipping in unseen
        await conn.execute(
            sa.text("UPDATE insurance_years SET closed_months = 1 WHERE county_code = :c AND year = :y"),
            {"c": COUNTY, "y": YEAR},
        )
        await tx.commit()
    refused = await late
    assert refused.status_code == 409 and refused.json()["errors"][0]["slug"] == "period-closed"

    # and the other way round: the service's close of month 2 runs against a batch in flight
    results = await asyncio.gather(
        *[
            c.post("/v1/claims:batch", json=batch(2, f"m2-{n}"), headers=his(w, "hospital2"))
            for n in range(6)
        ],
        c.post(f"/v1/insurance-years/{COUNTY}/{YEAR}/months/2/close", headers=officer(w)),
    )
    assert all(r.status_code in (200, 409) for r in results)
    async with billing_engine.connect() as conn:
        stored, charged = (
            await conn.execute(
                sa.text(
                    "SELECT (SELECT coalesce(sum(insurance_share), 0) FROM claims WHERE year = :y AND month = 2), "
                    "(SELECT coalesce(sum(l.amount), 0) FROM ledger_lines l JOIN journals j ON j.id = l.journal_id "
                    " WHERE j.year = :y AND j.month = 2 AND l.account = 'provider.outside_care')"
                ),
                {"y": YEAR},
            )
        ).one()
    assert stored == charged  # every stored claim of month 2 is in its postings (28,000 each)
    assert stored % 28_000 == 0


async def test_two_batches_racing_with_the_same_new_claims_store_them_once(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    """Both batches read the claim numbers as new, then race to store them: the loser reports them as
    duplicates (the documented answer for a claim already stored), not a 409, and nothing is stored or
    charged twice."""
    c, w = billing_client, county
    await open_year(c, w, RACE_YEAR, parameters(w, (10, 10)))
    body = {
        "claims": [
            claim(w, f"DUP-{k}", "township1", "resident1", "outpatient", f"{RACE_YEAR}-05-0{k}", 30_000)
            for k in (1, 2)
        ]
    }
    async with billing_engine.connect() as conn:
        tx = await conn.begin()  # both batches wait here, after reading the claim numbers as new
        await conn.execute(
            sa.text("SELECT 1 FROM insurance_years WHERE county_code = :c AND year = :y FOR UPDATE"),
            {"c": COUNTY, "y": RACE_YEAR},
        )
        racing = [
            asyncio.create_task(c.post("/v1/claims:batch", json=body, headers=his(w, "township1")))
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)
        assert not any(t.done() for t in racing)
        await tx.commit()
    first, second = [await t for t in racing]
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    outcomes = sorted((r.json()["created"], r.json()["duplicates"]) for r in (first, second))
    assert outcomes == [(0, 2), (2, 0)]
    assert sorted(r.json()["insurance_share"] for r in (first, second)) == [0, 17_000]  # 2 × 0.85 × 10,000
    async with billing_engine.connect() as conn:
        stored = await conn.scalar(
            sa.text("SELECT count(*) FROM claims WHERE year = :y AND claim_no LIKE 'DUP-%'"), {"y": RACE_YEAR}
        )
    assert stored == 2
