"""Failed-login throttling, per account (username or client_id) and per client address.

`Backoff` is the arithmetic (plain Python, unit-tested): the Nth failure in a row locks for `base`
seconds, each further one doubles it, up to `cap`; the count is forgotten `window` seconds after the last
attempt (or after the last lock ends). The per-address threshold is higher than the per-account one: a
hospital's staff log in from behind one NAT address.

`LoginThrottle` keeps the counts and locks in Redis, so every replica sees them, and decides atomically
(one Lua script, Redis's own clock through key expiry): while an account or address is locked every
attempt is refused with a 429 and Retry-After without looking at the password — a brute-forcer learns
nothing, even from the right one. An attempt is counted *before* its password is checked, and the
attempt that reaches the threshold sets the lock before its check starts; so concurrent guesses cannot
all slip through while the first ones are still being hashed. Its outcome then settles the count:
- wrong credentials: the count (and any lock it set) stands, and a lock is written to the audit log;
- right credentials: the account starts again from zero; the address gets its attempt back;
- anything else (the database failed): both get the attempt back — it was not a guess.
If Redis is unreachable logins go on unthrottled (counted in `gateway_rate_limit_fail_open_total`).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import structlog
from asgi_correlation_id import correlation_id

from shared.problems import Problem

from .audit import AuditRecord, AuditWriter
from .auth import InvalidGrant
from .ratelimit import RedisUnreachable, SharedRedis
from .settings import GatewaySettings

log = structlog.get_logger()
MAX_DOUBLINGS = 40  # 2**40 × any sane base is past any cap; keeps the float arithmetic finite


@dataclass(frozen=True)
class Backoff:
    threshold: int  # failures in a row before the first lock
    base_seconds: float  # the first lock
    cap_seconds: float  # the longest lock
    window_seconds: float  # failures are forgotten this long after the last one

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("need threshold ≥ 1 and 0 < base_seconds ≤ cap_seconds")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")

    def lock_seconds(self, failures: int) -> float:
        """How long the account (or address) is locked after `failures` failures in a row."""
        if failures < self.threshold:
            return 0.0
        doublings: int = min(failures - self.threshold, MAX_DOUBLINGS)
        return min(self.cap_seconds, self.base_seconds * float(2**doublings))

    def schedule_ms(self) -> list[int]:
        """The successive locks in milliseconds, from the first up to the cap (which then repeats)."""
        locks: list[int] = []
        failures = self.threshold
        while not locks or locks[-1] < math.ceil(self.cap_seconds * 1000):
            locks.append(math.ceil(self.lock_seconds(failures) * 1000))
            failures += 1
        return locks

    def script_args(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "window": math.ceil(self.window_seconds * 1000),
            "locks": self.schedule_ms(),
        }


def retry_after(milliseconds: int) -> int:
    """Whole seconds for a Retry-After header: never 0 while something is still locked."""
    return max(1, math.ceil(milliseconds / 1000))


def locked(seconds: int) -> Problem:
    return Problem(
        429,
        "login-locked",
        "登录失败次数过多，请稍后再试",
        "Too many failed logins; try again later",
        retry_after=seconds,
    )


# KEYS: per scope its count and its lock. ARGV[1]: per scope {threshold, window, locks}.
# Returns {0, ms} when a lock stands, else {1, count1, lock1_ms, count2, lock2_ms, ...}.
BEGIN = """
local scopes = cjson.decode(ARGV[1])
local wait = 0
for i = 1, #scopes do
  local ttl = redis.call('PTTL', KEYS[2 * i])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {0, wait} end
local result = {1}
for i, s in ipairs(scopes) do
  local count = redis.call('INCR', KEYS[2 * i - 1])
  local lock = 0
  if count >= s.threshold then
    lock = s.locks[math.min(count - s.threshold + 1, #s.locks)]
    redis.call('SET', KEYS[2 * i], count, 'PX', lock)
  end
  redis.call('PEXPIRE', KEYS[2 * i - 1], s.window + lock)
  result[#result + 1] = count
  result[#result + 1] = lock
end
return result
"""

# ARGV[1]: per scope {reset, count}. A reset forgets the scope; otherwise its attempt is given back and
# the lock that attempt set (its value is the count that set it) is lifted.
SETTLE = """
local scopes = cjson.decode(ARGV[1])
for i, s in ipairs(scopes) do
  if s.reset then
    redis.call('DEL', KEYS[2 * i - 1], KEYS[2 * i])
  else
    if redis.call('DECR', KEYS[2 * i - 1]) <= 0 then redis.call('DEL', KEYS[2 * i - 1]) end
    if redis.call('GET', KEYS[2 * i]) == tostring(s.count) then redis.call('DEL', KEYS[2 * i]) end
  end
end
return 1
"""


class LoginThrottle:
    def __init__(self, redis: SharedRedis, account: Backoff, address: Backoff) -> None:
        self.redis = redis
        self.account = account
        self.address = address

    @classmethod
    def from_settings(cls, settings: GatewaySettings, redis: SharedRedis) -> LoginThrottle:
        def backoff(threshold: int) -> Backoff:
            return Backoff(
                threshold,
                settings.login_lock_seconds,
                settings.login_lock_max_seconds,
                settings.login_window_seconds,
            )

        return cls(redis, backoff(settings.login_account_failures), backoff(settings.login_address_failures))

    @asynccontextmanager
    async def attempt(
        self, account: str, address: str, audit: AuditWriter, at: datetime
    ) -> AsyncIterator[None]:
        """Wrap one credential check for `account` ("user:<name>", "client:<id>") from `address`.
        Raises a 429 `Problem` while either is locked; the check's outcome settles the count."""
        keys = [f"login:account:{account}:n", f"login:account:{account}:lock"]
        keys += [f"login:address:{address}:n", f"login:address:{address}:lock"]
        scopes = [self.account.script_args(), self.address.script_args()]
        try:
            answer = await self.redis.run(BEGIN, keys, [json.dumps(scopes)])
        except RedisUnreachable as exc:
            self.redis.failed_open("logins", exc)
            yield
            return
        if not int(answer[0]):
            raise locked(retry_after(int(answer[1])))
        counts = [int(answer[1]), int(answer[3])]
        locks = {account: int(answer[2]), f"address:{address}": int(answer[4])}
        try:
            yield
        except InvalidGrant:
            for subject, lock in locks.items():
                if lock:
                    audit.record(_lock_record(subject, at))
            raise
        except Exception:
            await self._settle(keys, [{"reset": False, "count": n} for n in counts])
            raise
        await self._settle(keys, [{"reset": True, "count": counts[0]}, {"reset": False, "count": counts[1]}])

    async def _settle(self, keys: list[str], scopes: list[dict[str, object]]) -> None:
        """Never fails the login it settles: if Redis is away now, the count just stays one too high
        until its window passes."""
        try:
            await self.redis.run(SETTLE, keys, [json.dumps(scopes)])
        except (RedisUnreachable, Problem) as exc:
            log.warning("login_throttle_not_settled", error=str(exc))


def _lock_record(subject: str, at: datetime) -> AuditRecord:
    return AuditRecord(
        at=at,
        subject=subject,
        role="anonymous",
        institution_id=None,
        method="POST",
        path="/oauth/token",
        status=429,
        request_id=correlation_id.get(),
    )
