"""SIGTERM in the middle of traffic: the web role finishes what it accepted and exits, nobody gets a 5xx;
what it committed waits in the outbox (the web role relays nothing) until the worker role publishes it, and
the worker stops cleanly too. Either role is gone within 10 s of SIGTERM whatever is down."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.devtokens import DevSigner

from ..conftest import KAFKA, REGISTRY_DB, TEST_PII_KEY, admin_headers
from ..events.kafka_helpers import collect
from .processes import BASE_PORT, STOPPED, start, terminate, wait_healthy

PORT, WORKER_PORT = BASE_PORT, BASE_PORT + 1
NO_BROKER = "127.0.0.1:9"  # nothing listens there
NO_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:9/referral"


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")) or 0)


async def test_sigterm_mid_traffic_loses_nothing(
    clean_registry: None, registry_engine: AsyncEngine, signer: DevSigner
) -> None:
    env = {
        "AUTH_JWKS": json.dumps(signer.jwks()),
        "PII_KEY": TEST_PII_KEY,
        "DATABASE_URL": REGISTRY_DB,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    }
    web = start("registry", "serve", PORT, **env)
    try:
        await wait_healthy(web, PORT)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{PORT}", timeout=30, headers=admin_headers(signer)
        ) as c:
            await c.post("/v1/regions", json={"code": "411081", "name": "禹州市", "level": "county"})

            async def add(i: int) -> httpx.Response | Exception:
                await asyncio.sleep(i * 0.004)
                try:
                    return await c.post(
                        "/v1/catalogue-entries",
                        json={
                            "county_code": "411081",
                            "catalogue": "first_in_county",
                            "icd10": f"Z{i // 10:02d}.{i % 10}",
                            "name": f"病种{i}",
                        },
                    )
                except httpx.TransportError as exc:  # refused after shutdown began: the client retries later
                    return exc

            traffic = asyncio.gather(*[add(i) for i in range(300)])
            await asyncio.sleep(0.5)
            web.terminate()
            results = await traffic
    finally:
        exit_code, _ = await terminate(web, 60)  # also when the test failed before it meant to
    accepted = [r.json()["id"] for r in results if isinstance(r, httpx.Response) and r.status_code == 201]
    statuses = {r.status_code for r in results if isinstance(r, httpx.Response)}
    assert exit_code in STOPPED
    assert statuses <= {201}, statuses  # no 5xx, no half-done request
    assert 0 < len(accepted) < 300, len(accepted)  # the signal really landed mid-traffic
    async with registry_engine.connect() as conn:
        stored = set((await conn.execute(sa.text("SELECT id::text FROM catalogue_entries"))).scalars())
    assert set(accepted) <= stored
    assert await unpublished(registry_engine) >= len(accepted)  # the web role relayed nothing

    worker = start("registry", "worker", WORKER_PORT, **env)
    try:
        await wait_healthy(worker, WORKER_PORT)
        for _ in range(300):
            if not await unpublished(registry_engine):
                break
            await asyncio.sleep(0.1)
    finally:
        exit_code, seconds = await terminate(worker)
    assert exit_code in STOPPED and seconds < 10
    assert await unpublished(registry_engine) == 0
    subjects = {f"catalogue_entry/{i}" for i in accepted}
    events = await collect(
        KAFKA, "registry.catalogues", lambda evs: subjects <= {e.subject for e in evs}, seconds=30
    )
    assert subjects <= {e.subject for e in events}


@pytest.mark.parametrize(
    ("role", "database"),
    [("worker", "referral"), ("worker", NO_DATABASE), ("serve", NO_DATABASE)],
    ids=["worker-no-broker", "worker-nothing", "serve-no-database"],
)
async def test_sigterm_stops_within_ten_seconds_whatever_is_down(
    referral_db: str, role: str, database: str
) -> None:
    """With the broker away (and the database too), the referral worker, its relay, consumer and sweeps
    failing and retrying, still stops within 10 s of SIGTERM (it once hung for minutes while the broker was
    down); so does the web role without its database."""
    proc = start(
        "referral",
        role,
        WORKER_PORT if role == "worker" else PORT,
        DATABASE_URL=referral_db if database == "referral" else database,
        KAFKA_BOOTSTRAP_SERVERS=NO_BROKER,
        SWEEP_SECONDS="0.5",
    )
    try:
        await wait_healthy(proc, WORKER_PORT if role == "worker" else PORT)
        await asyncio.sleep(3)  # relay, consumers and sweeps are failing and retrying by now
    finally:
        code, seconds = await terminate(proc, 15)
    assert seconds < 10 and code in STOPPED, (seconds, code)
