"""The running platform for gateway tests: the gateway, the registry, referral and billing services as real
processes on loopback ports, the services trusting the gateway's JWKS URL. Only the web role runs (no
`worker`): the tests' county reached the read models before (tests/referral/world.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from ..conftest import (
    BILLING_DB,
    KAFKA,
    PG,
    REDIS,
    REFERRAL_DB,
    REGISTRY_DB,
    TEST_KEY_SECRET,
    TEST_PII_KEY,
    isolated_name,
)

_BASE = 18310 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
GATEWAY, REGISTRY, REFERRAL, BILLING = _BASE, _BASE + 1, _BASE + 2, _BASE + 3
ADMIN_PASSWORD = "commission-admin-pass"


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "PII_KEY": TEST_PII_KEY,  # explicit keys, never a default
        "KEY_SECRET": TEST_KEY_SECRET,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def running_platform(
    registry_db: str = REGISTRY_DB,
    referral_db: str = REFERRAL_DB,
    billing_db: str = BILLING_DB,
    **gateway_overrides: str,
) -> Iterator[str]:
    """Starts the processes (the gateway on a fresh database; `gateway_overrides` are extra environment
    variables for it) and stops them afterwards."""
    gateway_env = _env(
        **gateway_overrides,
        DATABASE_URL=f"{PG}/{isolated_name('gateway_test')}",
        REGISTRY_URL=f"http://127.0.0.1:{REGISTRY}",
        REFERRAL_URL=f"http://127.0.0.1:{REFERRAL}",
        BILLING_URL=f"http://127.0.0.1:{BILLING}",
        UPSTREAM_TIMEOUT_SECONDS="5",
        KEY_RING_REFRESH_SECONDS="1",
        REDIS_URL=REDIS,
    )
    subprocess.run([sys.executable, "-m", "services.gateway", "migrate"], env=gateway_env, check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.gateway",
            "create-user",
            "--username",
            "admin",
            "--password",
            ADMIN_PASSWORD,
        ],
        env=gateway_env,
        check=True,
        capture_output=True,
    )
    jwks_url = f"http://127.0.0.1:{GATEWAY}/.well-known/jwks.json"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.gateway", "serve", "--port", str(GATEWAY)], env=gateway_env
        ),
        subprocess.Popen(
            [sys.executable, "-m", "services.registry", "serve", "--port", str(REGISTRY)],
            env=_env(DATABASE_URL=registry_db, AUTH_JWKS_URL=jwks_url),
        ),
        subprocess.Popen(
            [sys.executable, "-m", "services.referral", "serve", "--port", str(REFERRAL)],
            env=_env(DATABASE_URL=referral_db, AUTH_JWKS_URL=jwks_url),
        ),
        subprocess.Popen(
            [sys.executable, "-m", "services.billing", "serve", "--port", str(BILLING)],
            env=_env(DATABASE_URL=billing_db, AUTH_JWKS_URL=jwks_url),
        ),
    ]
    try:
        for port in (GATEWAY, REGISTRY, REFERRAL, BILLING):
            for _ in range(150):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        yield f"http://127.0.0.1:{GATEWAY}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


async def token(client: httpx.AsyncClient, **form: str) -> dict[str, str]:
    r = await client.post("/oauth/token", data=form)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
