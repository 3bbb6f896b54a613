"""What the benchmarks share: a process's CPU time, and a closed-loop load of HTTP requests with their
latencies. (Run as `python bench/<name>.py`, so `bench/` is on the path.)"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    count: int,
    clients: int,
    body: Callable[[], Any] | None = None,
) -> dict[str, float]:
    """`count` requests from `clients` concurrent clients, each sending its next request when the last is
    answered (`body()` is each request's JSON, if any); every one must succeed (2xx). Requests per second,
    p50 and p99 in ms."""
    latencies: list[float] = []
    statuses: list[int] = []
    todo = iter(range(count))

    async def client() -> None:
        for _ in todo:
            t0 = time.perf_counter()
            async with session.request(method, url, headers=headers, json=body() if body else None) as r:
                await r.read()
                statuses.append(r.status)
            latencies.append((time.perf_counter() - t0) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    elapsed = time.perf_counter() - began
    ok = sum(200 <= s < 300 for s in statuses)
    if ok != count:
        raise SystemExit(f"{method} {url}: only {ok}/{count} succeeded: {sorted(set(statuses))}")
    ordered = sorted(latencies)
    return {
        "rps": count / elapsed,
        "p50": statistics.median(latencies),
        "p99": ordered[int(0.99 * (len(ordered) - 1))],
    }
