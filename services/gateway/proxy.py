"""Forwarding to the services over pooled connections: timeouts, one retry for idempotent requests, a
circuit breaker per upstream, and clear 502/503/504 problems when an upstream misbehaves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp

from shared.problems import Problem

FORWARDED = ("authorization", "content-type", "accept", "accept-language", "idempotency-key", "x-request-id")
IDEMPOTENT = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Breaker:
    """Opens after `threshold` consecutive failures, stays open `cooldown` seconds, then lets one try."""

    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = field(default=None)

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.cooldown:
            self.opened_at = None  # half-open: the next result decides
            self.failures = self.threshold - 1
            return True
        return False

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()


def unavailable(service: str) -> Problem:
    return Problem(
        503,
        "upstream-unavailable",
        f"{service} 服务暂不可用，请稍后重试",
        f"The {service} service is unavailable; retry later",
    )


@dataclass(frozen=True)
class UpstreamResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes


class Upstreams:
    """aiohttp rather than httpx here: on the hot path it costs about a millisecond less per request."""

    def __init__(self, urls: dict[str, str], timeout: float) -> None:
        self.urls = {k: v.rstrip("/") for k, v in urls.items() if v}
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=2.0)
        self._session: aiohttp.ClientSession | None = None
        self.breakers = {k: Breaker() for k in self.urls}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # created lazily, inside the running loop
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=200), auto_decompress=False
            )
        return self._session

    async def forward(
        self, service: str, method: str, path: str, query: bytes, headers: dict[str, str], body: bytes
    ) -> UpstreamResponse:
        breaker = self.breakers[service]
        if not breaker.allow():
            raise unavailable(service)
        url = f"{self.urls[service]}{path}" + (f"?{query.decode()}" if query else "")
        tries = 2 if method in IDEMPOTENT else 1
        for attempt in range(tries):
            try:
                async with self.session.request(method, url, headers=headers, data=body or None) as r:
                    response = UpstreamResponse(r.status, dict(r.headers), await r.read())
            except TimeoutError:
                breaker.record(False)
                raise Problem(
                    504, "upstream-timeout", f"{service} 服务响应超时", f"The {service} service timed out"
                ) from None
            except aiohttp.ClientError:
                breaker.record(False)
                if attempt + 1 < tries:
                    continue
                raise unavailable(service) from None
            breaker.record(response.status_code < 500)
            return response
        raise unavailable(service)

    async def get_json(self, url: str) -> object:
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
            return await r.json()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
