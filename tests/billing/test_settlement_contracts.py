"""Contract fees by the months a contract was in force, and capitation by contract (issue 14, point 15),
through the registry, Kafka and the billing API. A terminated contract is paid for the months whose first
day comes before its termination day (China time) and no further: one terminated mid-year for the months
it was in force, one terminated before it started for none (a resident who terminates and signs with
another team is not counted twice)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import contracts
from shared.clock import SHANGHAI
from shared.contracts import registry as reg
from shared.outbox import OutboxRelay

from ..conftest import KAFKA, REGISTRY_DB, admin_headers
from ..integration.county import post
from ..referral.world import World
from .helpers import officer, open_year, parameters, run
from .world import run_billing_consumer

EARLY = 2044  # a contract from 2044-04-01 to 2045-03-31, terminated (today) before it started
LATE = EARLY + 1
MID = 2046  # a contract for 2046, terminated on 2 September 2046 (China time)
# 01:30 on 2 September in China is still 1 September in UTC: read in UTC, September would not be paid
TERMINATED_AT = datetime(2046, 9, 2, 1, 30, tzinfo=SHANGHAI)


async def terminated_before_it_started(registry_app: FastAPI, w: World) -> str:
    """resident3 (community 1, no contract yet) signs with team 1 (township 1) from 1 April 2044 and
    terminates now, long before that."""
    async with AsyncClient(
        transport=ASGITransport(app=registry_app), base_url="http://registry", headers=admin_headers(w.signer)
    ) as registry:
        body = {"resident_id": w.ids["resident3"], "team_id": w.ids["team1"], "start_date": f"{EARLY}-04-01"}
        signed = await post(registry, "/v1/contracts", body)
        assert signed["end_date"] == f"{LATE}-03-31"
        ended = await post(
            registry,
            f"/v1/contracts/{signed['id']}/terminate",
            {"version": signed["version"], "reason": "迁出本县"},
            status=200,
        )
        assert ended["status"] == "terminated"
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    return str(signed["id"])


async def terminated_mid_year(w: World) -> str:
    """resident3's contract with team 1 for 2046, as the registry publishes it once terminated on
    `TERMINATED_AT` (the registry stamps a termination with its own clock, so the snapshot is published
    straight to the topic)."""
    ident = uuid.uuid4()
    data = reg.FamilyDoctorContract(
        id=ident,
        resident_id=uuid.UUID(w.ids["resident3"]),
        team_id=uuid.UUID(w.ids["team1"]),
        community_id=uuid.UUID(w.ids["community1"]),
        start_date=date(MID, 1, 1),
        end_date=date(MID, 12, 31),
        status="terminated",
        previous_contract_id=None,
        terminated_at=TERMINATED_AT,
        version=2,
    )
    event = contracts.event(
        "registry.contract.terminated", data, source=reg.SOURCE, subject=f"contract/{ident}", key=str(ident)
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        await producer.send_and_wait(event.topic, event.envelope.to_bytes(), key=str(ident).encode())
    finally:
        await producer.stop()
    return str(ident)


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


async def close(c: AsyncClient, w: World, year: int, month: int) -> int:
    """Community 1's capitation of the month closed."""
    await run(c, w, f"{year}/prepayments/{month}")
    closed = await run(c, w, f"{year}/months/{month}/close")
    mine = next(x for x in closed["journals"] if x["community_id"] == w.ids["community1"])
    return int(mine["capitation"])


@pytest_asyncio.fixture(scope="module")
async def terminated(registry_app: FastAPI, billing_engine: AsyncEngine, county: World) -> dict[str, str]:
    """Both contracts, once billing has heard of their termination through Kafka."""
    found = {
        "early": await terminated_before_it_started(registry_app, county),
        "mid": await terminated_mid_year(county),
    }

    async def heard(engine: AsyncEngine, _consumer: Any) -> bool:
        async with engine.connect() as conn:
            n = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM rm_contracts WHERE id = ANY(CAST(:ids AS uuid[])) "
                    "AND status = 'terminated' AND terminated_at IS NOT NULL"
                ),
                {"ids": list(found.values())},
            )
        return bool(n == 2)

    await run_billing_consumer(billing_engine, heard)
    return found


async def test_a_contract_terminated_mid_year_is_paid_for_the_months_it_was_in_force(
    billing_client: AsyncClient, county: World, terminated: dict[str, str]
) -> None:
    c, w = billing_client, county
    # capitation per contracted resident: community 1's pool 3 × 40,000 × 50 % = 60,000, 5,000 a month,
    # to the contracting team's institution (township 1) while the contract is in force on the month's
    # first day: January to September (terminated on 2 September), then nothing
    await open_year(c, w, MID, parameters(w, (3, 3), capitation_basis="contracted"))
    paid = [await close(c, w, MID, month) for month in range(1, 11)]
    assert paid == [5_000] * 9 + [0]
    # the fee, 7.5 % of 400 元 = 3,000 a year, for the nine months: 3,000 × 9 / 12 = 2,250
    done = await settle(c, w, MID)
    assert (done["contract_fees"], done["contract_months"]) == (2_250, 9)
    township = (await members(c, w, MID))[w.ids["township1"]]
    assert (township["member.contract_fee"], township["member.capitation"]) == (2_250, 45_000)


async def test_a_contract_terminated_before_it_started_is_paid_nothing(
    billing_client: AsyncClient, county: World, terminated: dict[str, str]
) -> None:
    c, w = billing_client, county
    # April 2044 to March 2045 would have been its term: neither year pays a fee or a capitation for it
    await open_year(c, w, EARLY, parameters(w, (3, 3)))
    first = await settle(c, w, EARLY)
    assert (first["contract_fees"], first["contract_months"]) == (0, 0)
    assert "member.contract_fee" not in (await members(c, w, EARLY)).get(w.ids["township1"], {})
    await open_year(c, w, LATE, parameters(w, (3, 3), capitation_basis="contracted"))
    assert [await close(c, w, LATE, month) for month in (1, 2, 3)] == [0, 0, 0]
    assert "member.capitation" not in (await members(c, w, LATE)).get(w.ids["township1"], {})
