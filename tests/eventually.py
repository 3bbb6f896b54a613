"""One way to wait for something asynchronous (an event consumed, a relay drained, a purge run) in tests:
poll a check until it holds, and fail with what was awaited and its last value instead of hanging."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], what: str, seconds: float = 30.0, every: float = 0.1) -> Any:
    """Call `check()` (awaiting it when it returns an awaitable) every `every` seconds until the value is
    truthy, and return it; after `seconds` the test fails, naming `what` and the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s (last: {value!r})")
        await asyncio.sleep(every)
