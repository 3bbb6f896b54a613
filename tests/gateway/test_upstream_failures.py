"""Upstreams that hang or are down: 504 and 503 problems, and a circuit breaker that stops calling a
service that keeps failing (the gateway runs in-process here, pointed at a silent server and a closed port)."""

from __future__ import annotations

import asyncio
import time

import pytest
from httpx import AsyncClient


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


async def test_the_breaker_closes_within_two_seconds_of_the_upstream_coming_back(
    gateway: tuple[AsyncClient, int],
) -> None:
    """Recovery: a probe asks the upstream's /readyz while the breaker is open (it used to wait 30 s)."""
    c, _ = gateway
    upstreams = c._transport.app.state.upstreams  # type: ignore[attr-defined]
    for _ in range(5):
        assert (await c.get("/api/referral/v1/referrals")).status_code == 503
    assert upstreams.breakers["referral"].is_open
    port = int(upstreams.urls["referral"].rsplit(":", 1)[1])

    async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"items": [], "total": 0}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(healthy, "127.0.0.1", port)  # the service is back
    try:
        back = time.monotonic()
        while (await c.get("/api/referral/v1/referrals")).status_code != 200:
            assert time.monotonic() - back < 2.0, "still refused 2 s after the upstream came back"
            await asyncio.sleep(0.05)
        assert not upstreams.breakers["referral"].is_open
    finally:
        server.close()
