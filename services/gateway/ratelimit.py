"""Rate limits: a token bucket per client (HIS) and per user, kept in Redis so every gateway replica
shares it. The bucket is refilled and taken in one Lua script on Redis's own clock (`TIME`), so
concurrent requests cannot both take the last token and replicas with skewed clocks agree.

Redis is reached through one bounded pool per process (`SharedRedis`, also used by the login throttle):
at most `REDIS_MAX_CONNECTIONS` calls in flight; a request that cannot get a connection within
`REDIS_WAIT_SECONDS` is refused with a 503 (the gateway is saturated; letting it through would let a
flood pass exactly when it matters). Only when Redis itself is unreachable (refused, timed out) does the
gateway let requests through unchecked — a county's referrals matter more than a counter — counted in
`gateway_rate_limit_fail_open_total` and logged at most once per `LOG_EVERY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, AuthorizationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.problems import Problem

from .settings import GatewaySettings

log = structlog.get_logger()

FAIL_OPEN = Counter(
    "gateway_rate_limit_fail_open_total",
    "Requests or logins let through unchecked because Redis was unreachable",
    ["kind"],
)
BUSY = Counter(
    "gateway_rate_limit_busy_total", "Requests refused (503) because no Redis connection was free in time"
)
LOG_EVERY_SECONDS = 10.0
DOWN_SECONDS = 1.0  # after Redis was unreachable, skip it this long instead of paying a timeout per request

TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisUnreachable(Exception):
    """Redis refused the connection or did not answer in time: the caller fails open."""


def busy() -> Problem:
    return Problem(
        503,
        "rate-limit-busy",
        "网关繁忙，请稍后重试",
        "The gateway is busy; retry shortly",
        retry_after=1,
    )


def redis_failed() -> Problem:
    return Problem(
        503,
        "rate-limit-unavailable",
        "限流服务异常，请稍后重试",
        "The rate-limit store failed; retry shortly",
        retry_after=2,
    )


class SharedRedis:
    """The process's one Redis client: a `BlockingConnectionPool` of `max_connections`, guarded by a
    semaphore of the same size so that waiting for a connection (busy, 503) is told apart from Redis
    being unreachable (fail open) — redis-py raises the same `ConnectionError` for both."""

    def __init__(self, url: str, max_connections: int, wait_seconds: float, timeout_seconds: float) -> None:
        self.pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=wait_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),  # once, for a pooled connection Redis closed; no sleeping
        )
        self.redis = Redis.from_pool(self.pool)
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(max_connections)
        self._down_until = 0.0
        self._last_logged = -math.inf
        self._unlogged = 0
        self._scripts: dict[str, AsyncScript] = {}

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> SharedRedis:
        return cls(
            settings.redis_url,
            settings.redis_max_connections,
            settings.redis_wait_seconds,
            settings.redis_timeout_seconds,
        )

    async def run(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run a Lua script (by SHA, loaded on first use). Raises `RedisUnreachable` (fail open), or a
        503 `Problem` when no connection is free in time or Redis answers with an error."""
        if time.monotonic() < self._down_until:
            raise RedisUnreachable("Redis was unreachable a moment ago")
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            BUSY.inc()
            raise busy() from None
        try:
            if script not in self._scripts:
                self._scripts[script] = self.redis.register_script(script)
            return await self._scripts[script](keys=list(keys), args=list(args))
        except (AuthenticationError, AuthorizationError) as exc:  # misconfigured, not unreachable
            log.error("redis_refused_us", error=f"{type(exc).__name__}: {exc}")
            raise redis_failed() from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._down_until = time.monotonic() + DOWN_SECONDS
            raise RedisUnreachable(str(exc)) from exc
        except RedisError as exc:
            log.error("redis_error", error=f"{type(exc).__name__}: {exc}")
            raise redis_failed() from None
        finally:
            self._slots.release()

    def failed_open(self, kind: str, error: BaseException) -> None:
        """Count a request let through unchecked; log it, at most once per LOG_EVERY_SECONDS."""
        FAIL_OPEN.labels(kind=kind).inc()
        now = time.monotonic()
        if now - self._last_logged < LOG_EVERY_SECONDS:
            self._unlogged += 1
            return
        log.warning("redis_unreachable_failing_open", kind=kind, error=str(error), since_last=self._unlogged)
        self._last_logged, self._unlogged = now, 0

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until one token is back


class RateLimiter:
    def __init__(self, redis: SharedRedis, capacity: int, per_second: float) -> None:
        self.redis = redis
        self.capacity = capacity
        self.per_second = per_second

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimiter:
        """The limiter and the process's one Redis pool (`limiter.redis`, shared with the login throttle)."""
        return cls(
            SharedRedis.from_settings(settings), settings.rate_limit_burst, settings.rate_limit_per_second
        )

    async def take(self, who: str) -> Decision:
        try:
            allowed, tokens = await self.redis.run(
                TAKE, [f"ratelimit:{who}"], [self.capacity, self.per_second]
            )
        except RedisUnreachable as exc:
            self.redis.failed_open("requests", exc)
            return Decision(True, 0)
        if int(allowed):
            return Decision(True, 0)
        missing = 1 - float(tokens)
        return Decision(False, max(1, math.ceil(missing / self.per_second)))

    async def close(self) -> None:
        await self.redis.close()
