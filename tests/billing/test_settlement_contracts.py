"""Contract fees by the months a contract was in force, and capitation by contract (issue 14, point 15),
through the registry, Kafka and the billing API: a family-doctor contract signed from 1 April and
terminated before the settlement."""

from __future__ import annotations

from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.outbox import OutboxRelay

from ..conftest import KAFKA, REGISTRY_DB, admin_headers
from ..integration.county import post
from ..referral.world import World
from .helpers import officer, open_year, parameters, run
from .world import run_billing_consumer

YEAR = 2044  # the contract runs 2044-04-01 to 2045-03-31
NEXT = YEAR + 1


async def terminated_contract(registry_app: FastAPI, billing_engine: AsyncEngine, w: World) -> str:
    """resident3 (community 1, no contract yet) signs with team 1 (township 1) from 1 April and
    terminates; billing hears of both through Kafka."""
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(w.signer)
    ) as registry:
        body = {"resident_id": w.ids["resident3"], "team_id": w.ids["team1"], "start_date": f"{YEAR}-04-01"}
        signed = await post(registry, "/v1/contracts", body)
        assert signed["end_date"] == f"{NEXT}-03-31"
        ended = await post(
            registry,
            f"/v1/contracts/{signed['id']}/terminate",
            {"version": signed["version"], "reason": "迁出本县"},
            status=200,
        )
        assert ended["status"] == "terminated"
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()

    async def terminated(engine: AsyncEngine, _consumer: Any) -> bool:
        async with engine.connect() as conn:
            status = await conn.scalar(
                sa.text("SELECT status FROM rm_contracts WHERE id = :id"), {"id": signed["id"]}
            )
        return bool(status == "terminated")

    await run_billing_consumer(billing_engine, terminated)
    return str(signed["id"])


async def settle(c: AsyncClient, w: World, year: int) -> dict[str, Any]:
    for month in range(1, 13):
        await run(c, w, f"{year}/prepayments/{month}")
    done = await run(
        c, w, f"{year}/settlement", {"scores": {w.ids["community1"]: 100, w.ids["community2"]: 100}}
    )
    return next(x for x in done["journals"] if x["community_id"] == w.ids["community1"])


async def members(c: AsyncClient, w: World, year: int) -> dict[str, dict[str, int]]:
    r = await c.get(f"/v1/communities/{w.ids['community1']}/statement?year={year}", headers=officer(w))
    assert r.status_code == 200, r.text
    found: dict[str, dict[str, int]] = r.json()["members"]
    return found


@pytest_asyncio.fixture(scope="module")
async def contract(registry_app: FastAPI, billing_engine: AsyncEngine, county: World) -> str:
    return await terminated_contract(registry_app, billing_engine, county)


async def test_a_contract_terminated_before_the_settlement_is_paid_for_the_months_it_was_in_force(
    billing_client: AsyncClient, county: World, contract: str
) -> None:
    c, w = billing_client, county
    # the contract is in force on the first days of April to December 2044, 9 months; the fee is 7.5 % of
    # 400 元 = 3,000 a year → 3,000 × 9 / 12 = 2,250, though it was terminated before the settlement
    await open_year(c, w, YEAR, parameters(w, (3, 3)))
    first = await settle(c, w, YEAR)
    assert first["contract_fees"] == 2_250 and first["contract_months"] == 9
    assert (await members(c, w, YEAR))[w.ids["township1"]]["member.contract_fee"] == 2_250


async def test_capitation_per_contracted_resident_follows_the_contracts_in_force(
    billing_client: AsyncClient, county: World, contract: str
) -> None:
    c, w = billing_client, county
    # 2045, capitation per contracted resident: community 1's pool 3 × 40,000 × 50 % = 60,000, 5,000 a
    # month, goes to the contracting team's institution (township 1) while the contract is in force
    # (January to March), not to the covered residents' home institution (village 1); from April no
    # contract is in force and nothing is paid
    await open_year(c, w, NEXT, parameters(w, (3, 3), capitation_basis="contracted"))
    for month in (1, 2, 3, 4):
        await run(c, w, f"{NEXT}/prepayments/{month}")
        closed = await run(c, w, f"{NEXT}/months/{month}/close")
        mine = next(x for x in closed["journals"] if x["community_id"] == w.ids["community1"])
        assert mine["capitation"] == (5_000 if month <= 3 else 0)
    paid = await members(c, w, NEXT)
    assert paid[w.ids["township1"]]["member.capitation"] == 15_000
    assert "member.capitation" not in paid.get(w.ids["village1"], {})
    # the fee for the year's three months: 3,000 × 3 / 12 = 750
    second = await settle(c, w, NEXT)
    assert (second["contract_fees"], second["contract_months"]) == (750, 3)
