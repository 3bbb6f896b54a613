"""Idempotency-Key: a retried write is applied once and answered the same."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from .county import add_resident, build_county, national_id
from .test_registry_orgs import count


async def test_retry_returns_first_response_and_writes_once(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    body = {"national_id": national_id(), "name": "孙", "community_id": c.community["id"]}
    headers = {"Idempotency-Key": "clinic-42-upload-1"}
    first = await client.post("/v1/residents", json=body, headers=headers)
    second = await client.post("/v1/residents", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert await count(registry_engine, "residents") == 1
    outbox = await count(registry_engine, "outbox")
    other = await client.post("/v1/residents", json={**body, "name": "另一个"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    assert await count(registry_engine, "outbox") == outbox


async def test_concurrent_retries_apply_once(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    c = await build_county(client)
    res = await add_resident(client, c)
    body = {"resident_id": res["id"], "team_id": c.team["id"]}
    results = await asyncio.gather(
        *[client.post("/v1/contracts", json=body, headers={"Idempotency-Key": "sign-1"}) for _ in range(6)]
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert await count(registry_engine, "contracts") == 1


async def test_failed_write_is_not_remembered(client: AsyncClient) -> None:
    c = await build_county(client)
    body = {"national_id": "123", "name": "x", "community_id": c.community["id"]}
    r1 = await client.post("/v1/residents", json=body, headers={"Idempotency-Key": "k"})
    assert r1.status_code == 422
    fixed = {**body, "national_id": national_id()}
    r2 = await client.post("/v1/residents", json=fixed, headers={"Idempotency-Key": "k2"})
    assert r2.status_code == 201
    too_long = await client.post("/v1/residents", json=fixed, headers={"Idempotency-Key": "x" * 201})
    assert too_long.status_code == 400
