"""The gateway's cost: an authenticated GET and POST to the registry called directly, through nginx
(Debian package, a plain reverse proxy) and through the gateway, all in one run. Reports the added
p50 latency of one client in sequence, and the throughput of 50 concurrent clients, against direct.

Run: `make bench-gateway` (starts PostgreSQL, Kafka and Redis if needed; installs Debian's nginx-light if missing).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from harness import measure

from shared.migrations import ensure_database, upgrade

ROOT = Path(__file__).parents[1]
PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:25432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:26379/0")
GATEWAY, REGISTRY, NGINX = 18400, 18401, 18402
SEQUENTIAL, CONCURRENT, CLIENTS = 300, 2000, 50
codes = (f"{letter}{n:02d}.{m:04d}" for letter in "ABCDEFGHJK" for n in range(100) for m in range(10_000))


def catalogue_entry() -> dict[str, str]:
    """A new first-in-county entry for each POST (a code used once)."""
    return {"county_code": "411081", "catalogue": "first_in_county", "icd10": next(codes), "name": "病种"}


def body(method: str) -> Callable[[], dict[str, str]] | None:
    return catalogue_entry if method == "POST" else None


async def fresh(name: str, migrations: str) -> str:
    url = f"{PG}/{name}"
    conn = await asyncpg.connect(PG.replace("postgresql+asyncpg://", "postgresql://") + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()
    await ensure_database(url)
    await asyncio.to_thread(upgrade, ROOT / migrations, url)
    return url


def start_nginx(workdir: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
error_log {workdir}/error.log warn;
pid {workdir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  upstream registry {{ server 127.0.0.1:{REGISTRY}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{NGINX};
    location / {{
      proxy_pass http://registry;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen(
        [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"]
    )


async def wait_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with session.get(url) as r:
                if r.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def main() -> None:
    registry_db = await fresh("registry_bench", "services/registry/migrations")
    gateway_db = await fresh("gateway_bench", "services/gateway/migrations")
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "RUN_WORKERS": "false",
        "LOG_LEVEL": "WARNING",
        "PII_KEY": base64.b64encode(os.urandom(32)).decode(),  # throwaway keys for throwaway databases
        "KEY_SECRET": base64.b64encode(os.urandom(32)).decode(),
    }
    gw_env = {
        **base,
        "DATABASE_URL": gateway_db,
        "REGISTRY_URL": f"http://127.0.0.1:{REGISTRY}",
        "REDIS_URL": REDIS,
        "RATE_LIMIT_BURST": "1000000",
        "RATE_LIMIT_PER_SECOND": "1000000",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.gateway",
            "create-user",
            "--username",
            "bench",
            "--password",
            "bench-password",
        ],
        env=gw_env,
        check=True,
        capture_output=True,
    )
    reg_env = {
        **base,
        "DATABASE_URL": registry_db,
        "AUTH_JWKS_URL": f"http://127.0.0.1:{GATEWAY}/.well-known/jwks.json",
    }
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:  # started inside the try: whatever fails, what was started is stopped
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.gateway", "serve", "--port", str(GATEWAY)], env=gw_env
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.registry", "serve", "--port", str(REGISTRY)], env=reg_env
            )
        )
        procs.append(start_nginx(ROOT / ".local/bench-nginx"))
        for p in procs[:2]:
            await asyncio.sleep(0)
            if p.poll() is not None:
                raise SystemExit(f"a service exited at start (port taken?): {p.args}")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as s:
            for port in (GATEWAY, REGISTRY, NGINX):
                await wait_up(s, f"http://127.0.0.1:{port}/healthz")
            async with s.post(
                f"http://127.0.0.1:{GATEWAY}/oauth/token",
                data={"grant_type": "password", "username": "bench", "password": "bench-password"},
            ) as r:
                auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
            async with s.post(
                f"http://127.0.0.1:{REGISTRY}/v1/regions",
                headers=auth,
                json={"code": "411081", "name": "禹州市", "level": "county"},
            ) as r:
                assert r.status == 201, await r.text()
            targets = {
                "direct": f"http://127.0.0.1:{REGISTRY}/v1",
                "nginx": f"http://127.0.0.1:{NGINX}/v1",
                "gateway": f"http://127.0.0.1:{GATEWAY}/api/registry/v1",
            }
            for method, path in (("GET", "/regions?limit=5"), ("POST", "/catalogue-entries")):
                for name, prefix in itertools.chain(targets.items()):
                    await measure(s, method, prefix + path, auth, 50, 5, body(method))  # warm-up
                    seq = await measure(s, method, prefix + path, auth, SEQUENTIAL, 1, body(method))
                    par = await measure(s, method, prefix + path, auth, CONCURRENT, CLIENTS, body(method))
                    results[(method, name)] = {"seq_p50": seq["p50"], **par}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
    print(
        f"\n{SEQUENTIAL} sequential requests (latency) and {CONCURRENT} from {CLIENTS} clients (throughput)"
    )
    print(
        f"{'':<14} {'seq p50 ms':>10} {'added':>8} {'req/s':>8} {'vs direct':>10} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for method in ("GET", "POST"):
        direct = results[(method, "direct")]
        for name in ("direct", "nginx", "gateway"):
            r = results[(method, name)]
            print(
                f"{method + ' ' + name:<14} {r['seq_p50']:>10.2f} {r['seq_p50'] - direct['seq_p50']:>8.2f} "
                f"{r['rps']:>8.0f} {r['rps'] / direct['rps']:>9.0%} {r['p50']:>8.1f} {r['p99']:>8.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
