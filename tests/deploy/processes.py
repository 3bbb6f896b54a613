"""A service role as a real process (`python -m services.<name> serve|worker`), for the tests that signal
it: started, waited for, and stopped with SIGTERM against a clock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

# apart from tests/gateway/platform.py (18310...) and tests/faults/platform.py (18500...)
BASE_PORT = 18201 + int(os.environ.get("TEST_PORT_OFFSET", "0"))


def start(service: str, role: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    extra = {"LOG_LEVEL": "WARNING", **env}
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}", role, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **extra},
    )


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        return await c.get(path)


async def wait_healthy(proc: subprocess.Popen[bytes], port: int, seconds: float = 30) -> None:
    """Until GET /healthz answers 200 (the process is up; its database may still be away)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            if (await get(port, "/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing healthy on port {port} after {seconds} s")


async def terminate(proc: subprocess.Popen[bytes], wait: float = 30) -> tuple[int, float]:
    """SIGTERM; the exit code and the seconds it took (killed after `wait`)."""
    began = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(proc.wait, wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = await asyncio.to_thread(proc.wait)
    return code, time.monotonic() - began


STOPPED = (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
