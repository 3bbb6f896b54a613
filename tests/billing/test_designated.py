"""Designated providers (定点, issue #14 point 13): billing keeps the registry's insurance-designated flag
from the institution events and refuses the claims of an institution the agency has not designated —
alone or in a batch, each claim named — while a designated one's claims are taken."""

from __future__ import annotations

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from ..referral.world import World
from .helpers import claim, his, open_year, parameters, post_claims

YEAR = 2018


async def test_a_claim_from_an_institution_not_designated_is_refused(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, YEAR, parameters(w, (10, 10)))
    one = claim(w, "ND-1", "village2", "resident2", "outpatient", f"{YEAR}-02-01", 20_000)
    r = await c.post("/v1/claims", json=one, headers=his(w, "village2"))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/institution-not-designated")
    [item] = problem["errors"]
    assert (item["slug"], item["index"], item["claim_no"]) == ("institution-not-designated", 0, "ND-1")
    assert "定点" in item["title_zh"] and "designated" in item["title_en"]

    batch = [
        claim(w, f"ND-{n}", "village2", "resident2", "outpatient", f"{YEAR}-02-0{n}", 20_000) for n in (2, 3)
    ]
    problem = await post_claims(c, w, "village2", batch, status=422)
    assert [(e["index"], e["claim_no"], e["slug"]) for e in problem["errors"]] == [
        (0, "ND-2", "institution-not-designated"),
        (1, "ND-3", "institution-not-designated"),
    ]
    async with billing_engine.connect() as conn:
        stored = await conn.scalar(sa.text("SELECT count(*) FROM claims WHERE year = :y"), {"y": YEAR})
        flags: dict[str, bool] = dict(
            (
                await conn.execute(
                    sa.text("SELECT id::text, insurance_designated FROM rm_institutions WHERE id = ANY(:i)"),
                    {"i": [w.ids["village1"], w.ids["village2"]]},
                )
            ).all()
        )
    assert stored == 0
    assert flags == {w.ids["village1"]: True, w.ids["village2"]: False}  # as the registry's events say

    # the same visit at a designated village clinic is taken: 0.90 × (20,000 − 10,000)
    ok = claim(w, "D-1", "village1", "resident1", "outpatient", f"{YEAR}-02-01", 20_000)
    [taken] = (await post_claims(c, w, "village1", [ok]))["claims"]
    assert taken["insurance_share"] == 9_000
