"""SIGTERM in the middle of traffic: the service finishes what it accepted, flushes its outbox to Kafka,
and exits; no accepted request and no event is lost, and nobody gets a 5xx."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.devtokens import DevSigner

from ..conftest import KAFKA, REGISTRY_DB, TEST_PII_KEY, admin_headers
from ..events.kafka_helpers import collect

PORT = 18201


async def test_sigterm_mid_traffic_loses_nothing(
    clean_registry: None, registry_engine: AsyncEngine, signer: DevSigner
) -> None:
    env = {
        **os.environ,
        "AUTH_JWKS": json.dumps(signer.jwks()),
        "PII_KEY": TEST_PII_KEY,
        "DATABASE_URL": REGISTRY_DB,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "RUN_WORKERS": "true",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_POLL_SECONDS": "5",
    }  # slow polling: events pile up for the flush
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.registry", "serve", "--port", str(PORT)], env=env
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=admin_headers(signer)) as c:
            for _ in range(100):
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
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
            proc.send_signal(signal.SIGTERM)
            results = await traffic
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # also when the test failed before it meant to
        exit_code = await asyncio.to_thread(proc.wait, 60)
    accepted = [r.json()["id"] for r in results if isinstance(r, httpx.Response) and r.status_code == 201]
    statuses = {r.status_code for r in results if isinstance(r, httpx.Response)}
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    assert statuses <= {201}, statuses  # no 5xx, no half-done request
    assert 0 < len(accepted) < 300, len(accepted)  # the signal really landed mid-traffic
    async with registry_engine.connect() as conn:
        stored = set((await conn.execute(sa.text("SELECT id::text FROM catalogue_entries"))).scalars())
        unpublished = await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    assert set(accepted) <= stored and unpublished == 0
    subjects = {f"catalogue_entry/{i}" for i in accepted}
    events = await collect(
        KAFKA, "registry.catalogues", lambda evs: subjects <= {e.subject for e in evs}, seconds=30
    )
    assert subjects <= {e.subject for e in events}


async def test_sigterm_stops_within_ten_seconds_whatever_is_down(referral_db: str) -> None:
    """With the broker away (and then the database too), the referral service with its relay, consumers and
    sweeps still stops within 10 s of SIGTERM (it used to hang for minutes while the broker was down)."""
    import time

    for database in (referral_db, "postgresql+asyncpg://postgres@127.0.0.1:9/referral"):
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # nothing listens there
            "RUN_WORKERS": "true",
            "SWEEP_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.referral", "serve", "--port", str(PORT + 1)], env=env
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT + 1}") as c:
                for _ in range(100):
                    try:
                        if (await c.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # relay, consumers and sweeps are failing and retrying by now
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 15)
            assert time.monotonic() - t0 < 10, database
            assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
        finally:
            if proc.poll() is None:
                proc.kill()
