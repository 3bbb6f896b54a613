"""Rate limits under a flood (issue #11, item 5): ~500 concurrent requests from one user through the
running gateway get no more than the bucket allows and never fail open; a gateway whose Redis is
unreachable lets requests (and logins) through and counts it; one whose Redis connections are all busy
refuses with a 503 instead of letting the surplus through."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import pytest_asyncio
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.gateway import models as m
from services.gateway.app import create_app
from services.gateway.auth import hasher
from services.gateway.settings import GatewaySettings
from shared.migrations import upgrade

from ..conftest import PG, REDIS, isolated_name, recreate_database, service_settings
from .conftest import MIGRATIONS, closed_port
from .platform import ADMIN_PASSWORD, running_platform, token

BURST, PER_SECOND = 120, 20.0  # the platform's gateway runs with the defaults


def metric(text: str, name: str, labels: str = "") -> float:
    """A sample from the Prometheus text on /metrics (0 while the counter has never moved)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


async def fail_open(c: httpx.AsyncClient, kind: str) -> float:
    return metric((await c.get("/metrics")).text, "gateway_rate_limit_fail_open_total", f'kind="{kind}"')


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(registry_db: str, referral_db: str, billing_db: str) -> AsyncIterator[tuple[str, str]]:
    """The running platform and the token of a user of its own, whose bucket no other test touches."""
    await recreate_database(isolated_name("gateway_test"))
    with running_platform() as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            admin = await token(c, grant_type="password", username="admin", password=ADMIN_PASSWORD)
            user = {"username": "flooder", "password": "flooder-password", "role": "village_doctor"}
            user["institution_id"] = "00000000-0000-0000-0000-00000000a002"
            assert (await c.post("/admin/users", headers=admin, json=user)).status_code == 201
            flooder = await token(c, grant_type="password", username="flooder", password="flooder-password")
        redis = Redis.from_url(REDIS)
        await redis.delete("ratelimit:user:flooder")
        await redis.aclose()
        yield url, flooder["Authorization"]


async def test_a_flood_from_one_user_gets_the_bucket_and_no_more(platform: tuple[str, str]) -> None:
    """500 requests at once (aiohttp, the fastest client here) for a cheap routed GET (the registry's 404)."""
    url, bearer = platform
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        before = await fail_open(c, "requests")
    connector = aiohttp.TCPConnector(limit=500)
    async with aiohttp.ClientSession(url, connector=connector, headers={"Authorization": bearer}) as s:

        async def one() -> int:
            async with s.get("/api/registry/v1/no-such-thing") as r:
                if r.status == 429:
                    body = await r.json(content_type=None)
                    assert (
                        int(r.headers["Retry-After"]) >= 1
                        and body["title_en"] == "Too many requests; slow down"
                    )
                return r.status

        start = time.monotonic()
        codes = Counter(await asyncio.gather(*(one() for _ in range(500))))
        elapsed = time.monotonic() - start
    passed = sum(n for code, n in codes.items() if code != 429)
    print(
        f"500 concurrent in {elapsed:.2f}s: {dict(codes)}; the bucket allows {BURST + PER_SECOND * elapsed:.0f}"
    )
    assert set(codes) <= {404, 429}, codes  # no 5xx, no busy refusals: the pool kept up
    assert BURST <= passed <= BURST + PER_SECOND * elapsed + 2, (passed, elapsed)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        assert await fail_open(c, "requests") == before  # nothing got through unchecked


@asynccontextmanager
async def in_process_gateway(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in this process in front of a closed port (every upstream call is a quick 503), its
    admin logged in; `overrides` are settings."""
    name = isolated_name("gateway_limits_test")
    await recreate_database(name)
    await asyncio.to_thread(upgrade, MIGRATIONS, f"{PG}/{name}")
    down = f"http://127.0.0.1:{closed_port()}"
    values: dict[str, object] = {
        "registry_url": down,
        "referral_url": down,
        "billing_url": down,
        "redis_url": REDIS,
        **overrides,
    }
    app = create_app(service_settings(GatewaySettings, f"{PG}/{name}", **values))
    async with app.state.db.uow() as uow:
        uow.session.add(
            m.User(username="admin", password_hash=hasher.hash("admin-password"), role="commission_admin")
        )
        await uow.commit()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
            form = {"grant_type": "password", "username": "admin", "password": "admin-password"}
            r = await c.post("/oauth/token", data=form)
            assert r.status_code == 200, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield c
    finally:
        await app.state.audit.close()
        await app.state.upstreams.close()
        await app.state.limiter.close()
        await app.state.db.dispose()


async def test_unreachable_redis_lets_requests_and_logins_through_and_counts_it() -> None:
    redis_down = f"redis://127.0.0.1:{closed_port()}/0"
    logins_before = REGISTRY.get_sample_value("gateway_rate_limit_fail_open_total", {"kind": "logins"}) or 0
    async with in_process_gateway(redis_url=redis_down, rate_limit_burst=2, rate_limit_per_second=0.1) as c:
        assert await fail_open(c, "logins") == logins_before + 1  # the admin's login went on unthrottled
        before = await fail_open(c, "requests")
        t0 = time.monotonic()
        codes = [(await c.get("/api/referral/v1/referrals")).status_code for _ in range(6)]
        assert codes == [503] * 6  # past the limit of 2 and on to the (down) upstream, not 429
        assert time.monotonic() - t0 < 3  # no Redis timeout paid per request
        assert await fail_open(c, "requests") == before + 6


async def test_a_silent_redis_is_unreachable_after_its_timeout_and_then_skipped() -> None:
    """Redis accepts connections but never answers (hung, or a black-holed network)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with in_process_gateway(
            redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.2
        ) as c:
            await asyncio.sleep(1.1)  # the admin's login found Redis silent; that was a second ago
            before = await fail_open(c, "requests")
            t0 = time.monotonic()
            assert (await c.get("/api/referral/v1/referrals")).status_code == 503  # the upstream, not Redis
            first = time.monotonic() - t0
            t0 = time.monotonic()
            assert (await c.get("/api/referral/v1/referrals")).status_code == 503
            second = time.monotonic() - t0
            assert 0.2 <= first < 2 and second < 0.2  # waited for Redis once, then skipped it for a second
            assert await fail_open(c, "requests") == before + 2
    finally:
        server.close()


async def test_no_free_redis_connection_is_a_503_not_a_pass() -> None:
    async with in_process_gateway(redis_max_connections=1, redis_wait_seconds=0.001) as c:
        before = await fail_open(c, "requests")
        busy_before = metric((await c.get("/metrics")).text, "gateway_rate_limit_busy_total")
        answers = await asyncio.gather(*(c.get("/api/referral/v1/referrals") for _ in range(50)))
        busy = [r for r in answers if r.status_code == 503 and r.json()["type"].endswith("/rate-limit-busy")]
        assert busy, Counter(r.status_code for r in answers)
        assert all(int(r.headers["Retry-After"]) >= 1 and r.json()["title_zh"] for r in busy)
        assert await fail_open(c, "requests") == before
        after = metric((await c.get("/metrics")).text, "gateway_rate_limit_busy_total")
        assert after == busy_before + len(busy)
