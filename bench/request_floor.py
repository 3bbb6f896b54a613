"""The per-request floor of every service: an authenticated `GET /v1/regions?limit=5` served by the registry
(FastAPI, the shared app factory, its middleware and dependencies) beside a bare ASGI app answering the same
request with asyncpg (`bench/floor_app.py`: token verified, page bounds checked, the same two queries, the
same JSON), both one uvicorn process with the services' options, in one run. Reports, for each, the p50 of
one client in sequence and the throughput, p50 and server CPU per request of 50 concurrent clients, and the
registry's ratios to the bare app (the target: throughput ≥ 0.5× of it).

Run: `make bench-floor` (starts PostgreSQL, Kafka and Redis if needed). Its own database
(`registry_floor_bench`, plus `BENCH_DB_SUFFIX`) and ports (`BENCH_PORT`, default 18500 and 18501); every
process it starts is in its own process group and is stopped however the run ends. `FLOOR_PROFILE=<file>`
records the registry under the concurrent load with py-spy (collapsed stacks) into that file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
from harness import cpu_seconds, measure

from shared.devtokens import DevSigner
from shared.migrations import ensure_database, upgrade

ROOT = Path(__file__).parents[1]
PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:25432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
DB_NAME = "registry_floor_bench" + os.environ.get("BENCH_DB_SUFFIX", "")
SERVICE_PORT = int(os.environ.get("BENCH_PORT", "18500"))
FLOOR_PORT = SERVICE_PORT + 1
SEQUENTIAL, CONCURRENT, CLIENTS = 300, 3000, 50
PATH = "/v1/regions?limit=5"
REGIONS = 30


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """In its own process group (so that `stop` reaches whatever it starts), from the repository root."""
    return subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


async def fresh_database() -> tuple[str, str]:
    """(SQLAlchemy URL, asyncpg DSN) of a new registry database holding REGIONS regions."""
    url = f"{PG}/{DB_NAME}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await conn.close()
    await ensure_database(url)
    await asyncio.to_thread(upgrade, ROOT / "services/registry/migrations", url)
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO regions (code, name, level) VALUES ('411000', '许昌市', 'city')")
    await conn.executemany(
        "INSERT INTO regions (code, name, level, parent_code) VALUES ($1, $2, 'county', '411000')",
        [(f"4110{n:02d}", f"县{n}") for n in range(1, REGIONS)],
    )
    await conn.close()
    return url, dsn


async def wait_up(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited at start (port taken?)")
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    out = os.environ.get("FLOOR_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not out or not Path(spy).exists():
        return None
    return subprocess.Popen(
        [spy, "record", "-p", str(pid), "-o", out, "-f", "raw", "-r", "250", "--nonblocking"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


async def main() -> None:
    url, dsn = await fresh_database()
    signer = DevSigner.generate()
    jwks = json.dumps(signer.jwks())
    token = signer.mint("commission_admin", ttl=3600)
    auth = {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    service_env = {
        **env,
        "DATABASE_URL": url,
        "AUTH_JWKS": jwks,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "RUN_WORKERS": "false",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "PII_KEY": base64.b64encode(os.urandom(32)).decode(),  # a throwaway key for a throwaway database
    }
    floor_env = {**env, "FLOOR_DSN": dsn, "FLOOR_JWKS": jwks}
    uvicorn_opts = ["--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, float]] = {}
    try:  # started inside the try: whatever fails, what was started is stopped
        service = start(
            [sys.executable, "-m", "services.registry", "serve", "--port", str(SERVICE_PORT)], service_env
        )
        procs.append(service)
        floor = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.floor_app:app",
                *uvicorn_opts,
                "--port",
                str(FLOOR_PORT),
            ],
            floor_env,
        )
        procs.append(floor)
        targets = {"registry": (service, SERVICE_PORT), "bare ASGI": (floor, FLOOR_PORT)}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as s:
            for proc, port in targets.values():
                await wait_up(s, f"http://127.0.0.1:{port}/healthz", proc)
            for name, (proc, port) in targets.items():
                target = f"http://127.0.0.1:{port}{PATH}"
                async with s.get(target, headers=auth) as r:
                    body = await r.json()
                    if r.status != 200 or body["total"] != REGIONS or len(body["items"]) != 5:
                        raise SystemExit(f"{name}: unexpected answer {r.status} {body}")
                await measure(s, "GET", target, auth, 200, 10)  # warm-up
                seq = await measure(s, "GET", target, auth, SEQUENTIAL, 1)
                spy = profile(proc.pid) if name == "registry" else None
                before = cpu_seconds(proc.pid)
                par = await measure(s, "GET", target, auth, CONCURRENT, CLIENTS)
                cpu = cpu_seconds(proc.pid) - before
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
                results[name] = {"seq_p50": seq["p50"], **par, "cpu_ms": cpu / CONCURRENT * 1000}
    finally:
        stop(procs)
    print(f"\nGET {PATH}: {SEQUENTIAL} sequential requests, then {CONCURRENT} from {CLIENTS} clients")
    print(f"{'':<12} {'seq p50 ms':>10} {'req/s':>8} {'p50 ms':>8} {'CPU ms/req':>11}")
    for name, row in results.items():
        print(
            f"{name:<12} {row['seq_p50']:>10.2f} {row['rps']:>8.0f} {row['p50']:>8.1f} {row['cpu_ms']:>11.3f}"
        )
    svc, bare = results["registry"], results["bare ASGI"]
    print(
        f"{'ratio':<12} {svc['seq_p50'] / bare['seq_p50']:>9.2f}× {svc['rps'] / bare['rps']:>7.2f}× "
        f"{svc['p50'] / bare['p50']:>7.2f}× {svc['cpu_ms'] / bare['cpu_ms']:>10.2f}×   (target: req/s ≥ 0.5×)"
    )


if __name__ == "__main__":
    asyncio.run(main())
