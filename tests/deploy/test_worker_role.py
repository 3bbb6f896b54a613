"""The two roles of a service with events. `serve` runs only HTTP: an event on its topics stays unconsumed
and its sweeps never run. `worker` consumes it (and relays, sweeps), and answers /healthz, /readyz and
/metrics on its own port. The in-process worker (`create_worker`) relays the registry's outbox here, as tests
that need events delivered do. The gateway has no worker."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.referral.events import TOPICS as REFERRAL_TOPICS
from services.registry.app import create_worker as create_registry_worker
from services.registry.events import TOPICS
from shared.devtokens import DevSigner

from ..conftest import (
    KAFKA,
    PG,
    REFERRAL_MIGRATIONS,
    isolated_name,
    migrated_database,
    registry_settings,
)
from ..integration.county import COUNTY, post
from ..referral.world import start_group_at_the_end
from .processes import BASE_PORT, STOPPED, get, start, terminate, wait_healthy
from .test_graceful_shutdown import unpublished

PORT, WORKER_PORT = BASE_PORT + 10, BASE_PORT + 11


def sample(metrics: str, name: str) -> float:
    """The value of an unlabelled series in a Prometheus text page."""
    found = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert found, name
    return float(found.group(1))


async def communities(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.text("SELECT id::text FROM rm_communities"))).scalars())


async def test_the_worker_consumes_and_serve_does_not(
    client: AsyncClient, registry_engine: AsyncEngine, signer: DevSigner
) -> None:
    url = await migrated_database(
        f"{PG}/{isolated_name('referral_roles_test')}",
        REFERRAL_MIGRATIONS,
        [*REFERRAL_TOPICS, *TOPICS.values()],
    )
    group = f"referral-roles-{uuid.uuid4().hex[:8]}"
    await start_group_at_the_end(group)  # only this test's events, not a developer broker's history
    env = {
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "CONSUMER_GROUP": group,
        "AUTH_JWKS": json.dumps(signer.jwks()),
        "SWEEP_SECONDS": "0.5",
    }
    engine = create_async_engine(url)
    web = start("referral", "serve", PORT, **env)
    worker = None
    try:
        async with create_registry_worker(registry_settings()):  # relays the registry's outbox
            await post(client, "/v1/regions", {"code": COUNTY, "name": "禹州市", "level": "county"})
            community = await post(
                client, "/v1/communities", {"code": "R1", "name": "医共体", "county_code": COUNTY}
            )
            await wait_healthy(web, PORT)
            for _ in range(100):  # the registry worker published it
                if not await unpublished(registry_engine):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the registry worker did not relay its outbox")
            await asyncio.sleep(3)  # time enough for a consumer, or five sweeps, had the web role any
            assert community["id"] not in await communities(engine)
            assert sample((await get(PORT, "/metrics")).text, "referral_sweep_runs_total") == 0

            worker = start("referral", "worker", WORKER_PORT, **env)
            await wait_healthy(worker, WORKER_PORT)
            for _ in range(300):
                if community["id"] in await communities(engine):
                    break
                await asyncio.sleep(0.1)
            assert community["id"] in await communities(engine)
        ready = await get(WORKER_PORT, "/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": True}
        lag = re.compile(rf'^consumer_lag_records{{group="{group}",', re.MULTILINE)
        for _ in range(100):  # the lag comes with the consumer's next turn, a sweep every 0.5 s
            metrics = (await get(WORKER_PORT, "/metrics")).text
            if lag.search(metrics) and sample(metrics, "referral_sweep_runs_total") >= 1:
                break
            await asyncio.sleep(0.1)
        assert lag.search(metrics)
        assert sample(metrics, "referral_sweep_runs_total") >= 1, metrics  # the worker sweeps
        backlog = f'outbox_unpublished_events{{database="{isolated_name("referral_roles_test")}"}} 0.0'
        assert backlog in metrics  # measured by the worker too
    finally:
        await engine.dispose()
        stopped = [await terminate(p) for p in (worker, web) if p is not None]
    assert all(code in STOPPED and seconds < 10 for code, seconds in stopped), stopped


@pytest.mark.parametrize("command", ["worker", "relay", "replay-dlt"])
def test_the_gateway_has_no_worker(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.gateway.__main__ import main

    monkeypatch.setattr(sys, "argv", ["gateway", command])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
