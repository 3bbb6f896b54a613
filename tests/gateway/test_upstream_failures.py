"""Upstreams that hang or are down: 504 and 503 problems, and a circuit breaker that stops calling a
service that keeps failing (the gateway runs in-process here, pointed at a silent server and a closed port)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from httpx import ASGITransport, AsyncClient

from services.gateway import models as m
from services.gateway.app import create_app
from services.gateway.auth import hasher
from services.gateway.settings import GatewaySettings
from shared.migrations import upgrade

from ..conftest import KAFKA, PG, REDIS, isolated_name, recreate_database

MIGRATIONS = Path(__file__).parents[2] / "services/gateway/migrations"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[tuple[AsyncClient, int]]:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # accepts, reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    hang_port = server.sockets[0].getsockname()[1]
    await recreate_database(isolated_name("gateway_failures_test"))
    url = f"{PG}/{isolated_name('gateway_failures_test')}"
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    settings = GatewaySettings(
        database_url=url,
        kafka_bootstrap_servers=KAFKA,
        run_workers=False,
        log_json=False,
        registry_url=f"http://127.0.0.1:{hang_port}",
        referral_url=f"http://127.0.0.1:{closed_port()}",
        upstream_timeout_seconds=0.5,
        redis_url=REDIS,
        **getattr(request, "param", {}),
    )
    app = create_app(settings)
    async with app.state.db.uow() as uow:
        for name in ("admin", "other"):
            uow.session.add(
                m.User(username=name, password_hash=hasher.hash(f"{name}-password"), role="commission_admin")
            )
        await uow.commit()
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://gateway") as c:
        r = await c.post(
            "/oauth/token", data={"grant_type": "password", "username": "admin", "password": "admin-password"}
        )
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield c, hang_port
    await app.state.upstreams.close()
    await app.state.db.dispose()
    server.close()


async def test_hanging_upstream_is_a_504(gateway: tuple[AsyncClient, int]) -> None:
    c, _ = gateway
    t0 = time.monotonic()
    r = await c.post("/api/registry/v1/regions", json={"code": "410000", "name": "x", "level": "province"})
    assert r.status_code == 504 and r.json()["title_en"] == "The registry service timed out"
    assert time.monotonic() - t0 < 5
    assert "127.0.0.1" not in r.text  # no upstream address leaks


async def test_down_upstream_is_a_503_and_the_breaker_opens(gateway: tuple[AsyncClient, int]) -> None:
    c, _ = gateway
    for _ in range(5):
        r = await c.get("/api/referral/v1/referrals")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    breaker = c._transport.app.state.upstreams.breakers["referral"]  # type: ignore[attr-defined]
    assert breaker.opened_at is not None  # five failures in a row: cut off for a while
    t0 = time.monotonic()
    r = await c.get("/api/referral/v1/referrals")
    assert r.status_code == 503 and time.monotonic() - t0 < 0.2  # answered without trying the upstream


@pytest.mark.parametrize("gateway", [{"rate_limit_burst": 3, "rate_limit_per_second": 0.5}], indirect=True)
async def test_a_burst_over_the_limit_gets_429_with_retry_after(gateway: tuple[AsyncClient, int]) -> None:
    c, _ = gateway
    first = [await c.get("/api/referral/v1/referrals") for _ in range(3)]
    assert all(r.status_code == 503 for r in first)  # allowed through (the upstream is down)
    limited = await c.get("/api/referral/v1/referrals")
    assert limited.status_code == 429 and limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["title_zh"].startswith("请求过于频繁")
    r = await c.post(
        "/oauth/token", data={"grant_type": "password", "username": "other", "password": "other-password"}
    )
    other = await c.get(
        "/api/referral/v1/referrals", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert other.status_code == 503  # another user has a bucket of their own
