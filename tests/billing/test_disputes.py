"""Disputes over a charge: only the parties open one, the agency decides, the ledger gets an adjusting
journal and the old lines stay as they were. The database itself refuses edits and unbalanced journals."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..integration.county import COUNTY
from ..referral.world import World
from .helpers import claim, his, officer, open_year, parameters, post_claims, run

YEAR = 2028


async def test_dispute_adjusts_by_a_new_journal(
    billing_client: AsyncClient, billing_engine: AsyncEngine, county: World
) -> None:
    c, w = billing_client, county
    await open_year(c, w, YEAR, parameters(w, (10, 10)))
    for month in range(1, 13):
        await run(c, w, f"{YEAR}/prepayments/{month}")
    posted = await post_claims(
        c,
        w,
        "hospital2",
        [
            # 70 % of (200,000 − 60,000) = 98,000, charged to community 1's budget
            claim(
                w,
                "D-1",
                "hospital2",
                "resident1",
                "inpatient",
                f"{YEAR}-02-10",
                200_000,
                dip_group="J18-1",
                dip_points="400",
            ),
        ],
    )
    inside = await post_claims(
        c, w, "township1", [claim(w, "D-2", "township1", "resident1", "outpatient", f"{YEAR}-02-11", 30_000)]
    )
    # inpatient care inside community 1, paid by DIP points (estimated 100 fen a point until year-end)
    await post_claims(
        c,
        w,
        "hospital1",
        [
            claim(
                w,
                "D-3",
                "hospital1",
                "resident1",
                "inpatient",
                f"{YEAR}-02-12",
                300_000,
                dip_group="J18-1",
                dip_points="1000",
            ),
        ],
    )
    dip_claim = (
        await post_claims(
            c,
            w,
            "township1",
            [
                claim(
                    w,
                    "D-4",
                    "township1",
                    "resident3",
                    "inpatient",
                    f"{YEAR}-02-13",
                    50_000,
                    dip_group="J18-1",
                    dip_points="400",
                ),
            ],
        )
    )["claims"][0]
    assert dip_claim["weighted_points"] == "340.0000"  # township coefficient 0.85
    charge_id = posted["claims"][0]["id"]
    lead = his(w, "hospital1")  # community 1's lead hospital

    async def dispute(claim_id: str, who: dict[str, str], status: int) -> dict[str, object]:
        r = await c.post(
            "/v1/disputes",
            json={"claim_id": claim_id, "claimed": 70_000, "reason": "部分项目不属于本医共体参保人"},
            headers=who,
        )
        assert r.status_code == status, r.text
        data: dict[str, object] = r.json()
        return data

    assert str((await dispute(charge_id, lead, 409))["type"]).endswith("not-charged-yet")
    await run(c, w, f"{YEAR}/months/1/close")
    await run(c, w, f"{YEAR}/months/2/close")
    assert str((await dispute(inside["claims"][0]["id"], his(w, "township1"), 409))["type"]).endswith(
        "not-a-charge"
    )
    await dispute(charge_id, his(w, "township2"), 403)  # not a party to the charge
    opened = await dispute(charge_id, lead, 201)
    assert (opened["status"], opened["charged"], opened["claimed"]) == ("open", 98_000, 70_000)
    assert str((await dispute(charge_id, his(w, "hospital2"), 409))["type"]).endswith("dispute-open")
    # a member contests the points of its inpatient case (not a fen amount)
    r = await c.post(
        "/v1/disputes",
        json={"claim_id": dip_claim["id"], "claimed": 4_000, "reason": "分组有误"},
        headers=his(w, "township1"),
    )
    assert r.status_code == 422 and r.json()["type"].endswith("dispute-figure")
    r = await c.post(
        "/v1/disputes",
        json={"claim_id": dip_claim["id"], "claimed_points": "400", "reason": "系数适用有误"},
        headers=his(w, "township1"),
    )
    assert r.status_code == 201, r.text
    points = r.json()
    assert (points["kind"], points["charged_points"], points["charged"], points["claimed"]) == (
        "points",
        "340.0000",
        34_000,
        40_000,
    )
    r = await c.post(
        f"/v1/disputes/{points['id']}/decision",
        json={
            "version": points["version"],
            "decision": "adjusted",
            "adjusted_points": "380",
            "note": "联合核查：按 380 分",
        },
        headers=officer(w),
    )
    assert r.status_code == 200 and r.json()["decided_points"] == "380.0000", r.text
    scores = {"scores": {w.ids["community1"]: "90", w.ids["community2"]: "90"}}
    assert (await run(c, w, f"{YEAR}/settlement", scores, status=409))["type"].endswith("disputes-open")

    url = f"/v1/disputes/{opened['id']}/decision"
    decision = {"version": opened["version"], "decision": "adjusted", "note": "联合核查：核减 14,000"}
    assert (await c.post(url, json={**decision, "adjusted": 84_000}, headers=lead)).status_code == 403
    assert (
        await c.post(url, json={**decision, "adjusted": 84_000, "version": 99}, headers=officer(w))
    ).status_code == 409
    r = await c.post(url, json=decision, headers=officer(w))
    assert r.status_code == 422 and r.json()["type"].endswith("bad-decision")
    r = await c.post(url, json={**decision, "adjusted": 84_000}, headers=officer(w))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided"]) == ("adjusted", 84_000)
    again = await c.post(
        url, json={**decision, "adjusted": 1, "version": r.json()["version"]}, headers=officer(w)
    )
    assert again.status_code == 409 and again.json()["type"].endswith("dispute-decided")

    async with billing_engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT j.kind, l.amount FROM ledger_lines l JOIN journals j ON j.id = l.journal_id "
                    "WHERE j.year = :y AND l.account = 'provider.outside_care' AND l.institution_id = :i ORDER BY l.id"
                ),
                {"y": YEAR, "i": w.ids["hospital2"]},
            )
        ).all()
    assert [tuple(x) for x in rows] == [("month_close", 98_000), ("dispute", -14_000)]  # old line kept
    st = (
        await c.get(f"/v1/communities/{w.ids['community1']}/statement?year={YEAR}", headers=officer(w))
    ).json()
    assert st["members"][w.ids["hospital2"]]["provider.outside_care"] == 84_000
    tb = (await c.get(f"/v1/insurance-years/{COUNTY}/{YEAR}/trial-balance", headers=officer(w))).json()
    assert tb["balanced"]
    async with billing_engine.connect() as conn:
        dip: dict[str, int] = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT l.institution_id::text, sum(l.amount) FROM ledger_lines l JOIN journals j ON j.id = l.journal_id "
                        "WHERE j.year = :y AND l.account = 'member.dip' AND l.community_id = :c GROUP BY 1"
                    ),
                    {"y": YEAR, "c": w.ids["community1"]},
                )
            ).all()
        )
    assert dip == {w.ids["hospital1"]: 100_000, w.ids["township1"]: 38_000}  # 34,000 + 40 points × 100
    assert (await run(c, w, f"{YEAR}/settlement", scores))["posted"]
    async with billing_engine.connect() as conn:
        dip = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT l.institution_id::text, sum(l.amount) FROM ledger_lines l JOIN journals j ON j.id = l.journal_id "
                        "WHERE j.year = :y AND l.account = 'member.dip' AND l.community_id = :c GROUP BY 1"
                    ),
                    {"y": YEAR, "c": w.ids["community1"]},
                )
            ).all()
        )
    # the DIP budget (40 % of 870,000 = 348,000; the 5 % reserve taken from the raised total, the
    # default reading) split 1000 : 380 points, to the fen
    assert dip == {w.ids["hospital1"]: 252_174, w.ids["township1"]: 95_826}


async def test_the_database_refuses_edits_and_unbalanced_journals(
    billing_engine: AsyncEngine, county: World
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with billing_engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE ledger_lines SET amount = amount + 1 WHERE id = (SELECT min(id) FROM ledger_lines)"
                )
            )
    with pytest.raises(DBAPIError, match="append-only"):
        async with billing_engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM journals WHERE id = (SELECT min(id) FROM journals)"))
    with pytest.raises(DBAPIError, match="does not balance"):
        async with billing_engine.begin() as conn:
            jid = await conn.scalar(
                sa.text(
                    "INSERT INTO journals (key, kind, county_code, year, memo, posted_at) "
                    "VALUES ('test:unbalanced', 'test', '411081', 2099, 'x', now()) RETURNING id"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO ledger_lines (journal_id, account, amount) VALUES (:j, 'community.cash', 100), (:j, 'fund.contributions', -99)"
                ),
                {"j": jid},
            )
    async with billing_engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM journals WHERE key = 'test:unbalanced'")) == 0
