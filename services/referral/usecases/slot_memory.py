"""Short-lived per-process memory for the 8 a.m. rush, where most attempts meet a full session.

- A session's fixed facts (hospital, department, start): a session never moves, and the slot grab
  re-checks in SQL that it is still open and not started, so a stale entry cannot book a cancelled one.
- "These pools of this session were full a moment ago" (1 s): further attempts in that second are told
  so without another grab. Freed slots go to the waitlist first anyway, and a process that frees a slot
  forgets the session at once; other processes forget within the second. When every pool a caller may
  use was open and full, the attempt is refused before anything else is read (the county's rules
  included: a window, once open, stays open).

A county's referral rules are remembered too (`county_rules`), for two seconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlMemory(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_items: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if time.monotonic() - item[0] > self.ttl:
            self._items.pop(key, None)
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.max_items:
            self._items.clear()  # bounded: a burst of distinct keys just starts over
        self._items[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._items.clear()

    def forget(self, session_id: uuid.UUID) -> None:
        for key in [
            k for k in self._items if k == session_id or (isinstance(k, tuple) and k[0] == session_id)
        ]:
            self._items.pop(key, None)


sessions: TtlMemory[uuid.UUID, object] = TtlMemory(5.0)
FULL_FOR = timedelta(seconds=1)
full_pools: TtlMemory[tuple[uuid.UUID, tuple[str, ...]], datetime] = TtlMemory(FULL_FOR.total_seconds())


def still_full(key: tuple[uuid.UUID, tuple[str, ...]], now: datetime) -> bool:
    """Full within the last second of both the wall clock and the service's clock (holds expire by
    the service's clock, which tests move)."""
    seen = full_pools.get(key)
    return seen is not None and timedelta(0) <= now - seen < FULL_FOR


def slot_freed(session_id: uuid.UUID) -> None:
    full_pools.forget(session_id)
