"""Rate limits: a token bucket per client (HIS) and per user, kept in Redis so every gateway replica
shares it. The bucket is refilled and taken in one Lua script, so concurrent requests cannot both take
the last token. If Redis is down the gateway lets requests through (and says so in the log): a
county's referrals matter more than a counter."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger()

TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until one token is back


class RateLimiter:
    def __init__(self, url: str, capacity: int, per_second: float) -> None:
        self.redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.capacity = capacity
        self.per_second = per_second
        self.script = self.redis.register_script(TAKE)

    async def take(self, who: str) -> Decision:
        try:
            allowed, tokens = await self.script(
                keys=[f"ratelimit:{who}"], args=[self.capacity, self.per_second, time.time()]
            )
        except RedisError as exc:
            log.warning("rate_limit_unavailable", error=repr(exc))
            return Decision(True, 0)
        if int(allowed):
            return Decision(True, 0)
        missing = 1 - float(tokens)
        return Decision(False, max(1, math.ceil(missing / self.per_second)))

    async def close(self) -> None:
        await self.redis.aclose()
