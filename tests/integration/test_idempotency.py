"""Idempotency-Key: a retried write is applied once and answered the same; a key is the caller's own
on one route, and expires (then the request runs afresh, and a background job deletes it)."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.idempotency import DEFAULT_TTL_SECONDS
from shared.retention import purge_expired_keys, purge_forever

from ..conftest import counts_by
from ..referral.test_slots import publish
from ..referral.world import World
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


async def test_same_key_from_two_callers_on_a_bodyless_post_is_two_requests(
    referral_client: AsyncClient, world: World
) -> None:
    """The hole this closes: a second caller reusing a key got the first caller's stored reply."""
    c, w = referral_client, world
    session = await publish(c, w)
    url, key = f"/v1/sessions/{session['id']}/cancel", {"Idempotency-Key": "cancel-1"}
    mine = w.token("his_system", "hospital1", subject="his-a@hospital1") | key
    first = await c.post(url, headers=mine)
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    # another hospital's HIS, same key: its own answer (not hospital1's session), nothing replayed
    stranger = await c.post(url, headers=w.token("his_system", "hospital2", subject="his@hospital2") | key)
    assert stranger.status_code == 404 and "Idempotent-Replayed" not in stranger.headers
    assert stranger.json()["type"].endswith("not-found")
    # a second client of the same hospital, same key: runs for itself, and the session is already off
    colleague = w.token("his_system", "hospital1", subject="his-b@hospital1") | key
    second = await c.post(url, headers=colleague)
    assert second.status_code == 409 and second.json()["type"].endswith("session-cancelled")
    assert "Idempotent-Replayed" not in second.headers
    again = await c.post(url, headers=mine)  # the first caller's retry is still its own replay
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_same_key_on_two_routes_is_two_requests(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    key = {"Idempotency-Key": "upload-7"}
    body = {"national_id": national_id(), "name": "孙", "community_id": c.community["id"]}
    resident = await client.post("/v1/residents", json=body, headers=key)
    assert resident.status_code == 201
    contract = await client.post(
        "/v1/contracts", json={"resident_id": resident.json()["id"], "team_id": c.team["id"]}, headers=key
    )
    assert contract.status_code == 201 and "Idempotent-Replayed" not in contract.headers
    gone = await client.delete(f"/v1/residents/{resident.json()['id']}", headers=key)
    assert gone.status_code == 200 and gone.json()["active"] is False
    replay = await client.post("/v1/residents", json=body, headers=key)
    assert replay.json() == resident.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert await count(registry_engine, "idempotency_keys") == 3


async def backdate(engine: AsyncEngine, key: str, seconds: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => :s) WHERE key = :k"
            ),
            {"s": seconds, "k": key},
        )


async def test_expired_key_is_absent(client: AsyncClient, registry_engine: AsyncEngine) -> None:
    c = await build_county(client)
    key = {"Idempotency-Key": "nightly-sync-1"}
    body: dict[str, Any] = {"national_id": national_id(), "name": "孙", "community_id": c.community["id"]}
    first = await client.post("/v1/residents", json=body, headers=key)
    assert first.status_code == 201
    await backdate(registry_engine, "nightly-sync-1", DEFAULT_TTL_SECONDS - 60)  # 23 h 59 min: still kept
    kept = await client.post("/v1/residents", json=body, headers=key)
    assert kept.json() == first.json() and kept.headers["Idempotent-Replayed"] == "true"
    await backdate(registry_engine, "nightly-sync-1", DEFAULT_TTL_SECONDS + 60)  # a day ago: expired
    afresh = await client.post("/v1/residents", json=body, headers=key)
    assert afresh.status_code == 409 and "Idempotent-Replayed" not in afresh.headers  # ran: a duplicate
    other = {**body, "national_id": national_id(order=14)}  # the refusal stored nothing: still expired
    second = await client.post("/v1/residents", json=other, headers=key)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    await backdate(registry_engine, "nightly-sync-1", DEFAULT_TTL_SECONDS + 60)
    third = await client.post("/v1/residents", json=body, headers=key)  # another body: not a 422 now
    assert third.status_code == 409 and third.json()["type"].endswith("resident-exists"), third.text
    assert await count(registry_engine, "residents") == 2


async def test_racing_retries_on_an_expired_key_apply_once(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)
    key = {"Idempotency-Key": "upload-9"}
    body = {"national_id": national_id(), "name": "孙", "community_id": c.community["id"]}
    assert (await client.post("/v1/residents", json=body, headers=key)).status_code == 201
    await backdate(registry_engine, "upload-9", DEFAULT_TTL_SECONDS + 60)
    other = {**body, "national_id": national_id(order=16)}
    results = await asyncio.gather(*[client.post("/v1/residents", json=other, headers=key) for _ in range(6)])
    assert {r.status_code for r in results} == {201} and len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 5
    assert await count(registry_engine, "residents") == 2


async def insert_keys(engine: AsyncEngine, subject: str, n: int, age_seconds: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (subject, route, key, fingerprint, status_code, response, created_at)"
                " SELECT :s, 'POST /v1/residents', 'k-' || i, 'fp', 201, '{}',"
                " now() - make_interval(secs => :age) FROM generate_series(1, :n) AS i"
            ),
            {"s": subject, "n": n, "age": age_seconds},
        )


async def remaining(engine: AsyncEngine) -> list[tuple[str, int]]:
    return await counts_by(engine, "idempotency_keys", "subject")


async def test_retention_deletes_expired_keys_in_batches(
    registry_app: Any, clean_registry: None, registry_engine: AsyncEngine
) -> None:
    day = DEFAULT_TTL_SECONDS
    await insert_keys(registry_engine, "old", 7, day + 60)
    await insert_keys(registry_engine, "young", 3, day - 60)
    assert await purge_expired_keys(registry_app.state.db, day, batch=3) == 7  # 3 + 3 + 1 statements
    assert await remaining(registry_engine) == [("young", 3)]
    assert await purge_expired_keys(registry_app.state.db, day, batch=3) == 0
    # the background worker (started with the app's workers) does the same on its period
    await insert_keys(registry_engine, "old", 4, day + 60)
    worker = asyncio.create_task(purge_forever(registry_app.state.db, day, period=0.05))
    try:
        for _ in range(100):
            if await remaining(registry_engine) == [("young", 3)]:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.cancel()
    assert await remaining(registry_engine) == [("young", 3)]
