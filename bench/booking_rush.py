"""The 8 a.m. release: 2,000 booking attempts from 200 concurrent clients on one session of 100 slots
(40 family-doctor, 60 public) served by two referral-service processes, against a raw-asyncpg baseline
doing the same booking transaction in the same run.

Run: `make bench-booking` (starts PostgreSQL and Kafka if needed). Prints attempts/s, p50/p99 latency,
bookings made and overbooked slots for both, and the service/baseline ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from harness import cpu_seconds

from shared.devtokens import DevSigner
from shared.migrations import ensure_database, upgrade

ROOT = Path(__file__).parents[1]
PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:25432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
DB_URL = f"{PG}/referral_bench"
DSN = DB_URL.replace("postgresql+asyncpg://", "postgresql://")
ATTEMPTS, CLIENTS, CAPACITY, FD_SHARE = 2000, 200, 100, 0.4
PORTS = (18101, 18102)
HOSPITAL, COMMUNITY, TEAM = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
DOCTORS = [uuid.uuid4() for _ in range(20)]


async def reset_database() -> None:
    conn = await asyncpg.connect(DSN.rsplit("/", 1)[0] + "/postgres")
    await conn.execute("DROP DATABASE IF EXISTS referral_bench WITH (FORCE)")
    await conn.close()
    await ensure_database(DB_URL)
    await asyncio.to_thread(upgrade, ROOT / "services/referral/migrations", DB_URL)


async def seed(residents: list[uuid.UUID], contracted: list[uuid.UUID]) -> None:
    """The read model as registry events would leave it: one county hospital, residents, one team."""
    conn = await asyncpg.connect(DSN)
    await conn.execute("INSERT INTO rm_communities VALUES ($1, '411081', $2, true, 1)", COMMUNITY, HOSPITAL)
    await conn.execute(
        "INSERT INTO rm_institutions (id, name, tier, kind, region_code, community_id, membership, "
        "departments, active, version) VALUES ($1, '县医院', 'county', 'general', '411081', $2, 'lead', "
        "ARRAY['XNK'], true, 1)",
        HOSPITAL,
        COMMUNITY,
    )
    await conn.execute(
        "INSERT INTO rm_teams VALUES ($1, $2, $3, $4, true, 1)", TEAM, COMMUNITY, HOSPITAL, DOCTORS
    )
    await conn.copy_records_to_table(
        "rm_residents", records=[(r, COMMUNITY, None, date(1960, 1, 1), True, 1) for r in residents]
    )
    await conn.copy_records_to_table(
        "rm_contracts",
        records=[
            (uuid.uuid4(), r, TEAM, "active", date(2020, 1, 1), date(2099, 1, 1), 1) for r in contracted
        ],
    )
    await conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def rush(attempt: Any, jobs: list[Any]) -> tuple[float, list[float], list[int]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    codes: list[int] = []

    async def client() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            t0 = time.perf_counter()
            codes.append(await attempt(job))
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(CLIENTS)])
    return time.perf_counter() - start, latencies, codes


async def overbooked(session_id: uuid.UUID) -> tuple[int, int]:
    conn = await asyncpg.connect(DSN)
    booked = await conn.fetchval(
        "SELECT count(*) FROM bookings WHERE session_id = $1 AND status = 'booked'", session_id
    )
    doubled = await conn.fetchval(
        "SELECT count(*) FROM (SELECT slot_id FROM bookings WHERE session_id = $1 AND "
        "status = 'booked' GROUP BY slot_id HAVING count(*) > 1) x",
        session_id,
    )
    await conn.close()
    return booked, doubled


async def run_service(
    signer: DevSigner, residents: list[uuid.UUID], contracted: set[uuid.UUID]
) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "RUN_WORKERS": "false",
        "AUTH_JWKS": json.dumps(signer.jwks()),
        "SLOT_PRIORITY_SHARE": "0",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "20",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.referral.app:create_app",
                "--factory",
                "--port",
                str(p),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        )
        for p in PORTS
    ]
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as http:
            for port in PORTS:
                for _ in range(100):
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
            his = {"Authorization": "Bearer " + signer.mint("his_system", institution_id=HOSPITAL)}
            starts = datetime.now(UTC) + timedelta(days=2)
            session = (
                await http.post(
                    f"http://127.0.0.1:{PORTS[0]}/v1/sessions",
                    headers=his,
                    json={
                        "institution_id": str(HOSPITAL),
                        "department_code": "XNK",
                        "resource_type": "specialist",
                        "starts_at": starts.isoformat(),
                        "ends_at": (starts + timedelta(hours=4)).isoformat(),
                        "capacity": CAPACITY,
                    },
                )
            ).json()
            assert session["free"] == {"family_doctor": 40, "public": 60}, session
            tokens = {
                d: "Bearer " + signer.mint("family_doctor", practitioner_id=d, institution_id=HOSPITAL)
                for d in DOCTORS
            }
            jobs = []
            for i, r in enumerate(residents):
                if r in contracted:
                    headers = {"Authorization": tokens[DOCTORS[i % len(DOCTORS)]]}
                else:
                    headers = {"Authorization": "Bearer " + signer.mint("resident", resident_id=r)}
                jobs.append((PORTS[i % 2], headers, {"session_id": session["id"], "resident_id": str(r)}))

            # the load itself comes from aiohttp (lighter than httpx, it shares the 2 cores with the servers)
            connector = aiohttp.TCPConnector(limit=CLIENTS)
            async with aiohttp.ClientSession(connector=connector) as load:

                async def attempt(job: Any) -> int:
                    port, headers, body = job
                    async with load.post(
                        f"http://127.0.0.1:{port}/v1/bookings", json=body, headers=headers
                    ) as resp:
                        await resp.read()
                        return resp.status

                await attempt(
                    (
                        PORTS[0],
                        {"Authorization": tokens[DOCTORS[0]]},
                        {"session_id": str(uuid.uuid4()), "resident_id": str(residents[0])},
                    )
                )  # warm-up: 404
                await attempt(
                    (
                        PORTS[1],
                        {"Authorization": tokens[DOCTORS[0]]},
                        {"session_id": str(uuid.uuid4()), "resident_id": str(residents[0])},
                    )
                )
                cpu_before = [cpu_seconds(p.pid) for p in procs]
                elapsed, latencies, codes = await rush(attempt, jobs)
                server_cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(cpu_before)
        booked, doubled = await overbooked(uuid.UUID(session["id"]))
        return {
            "elapsed": elapsed,
            "latencies": latencies,
            "codes": codes,
            "booked": booked,
            "doubled": doubled,
            "server_cpu": server_cpu,
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


async def run_baseline(residents: list[uuid.UUID]) -> dict[str, Any]:
    """The same transaction by hand: grab a slot (SKIP LOCKED), insert the booking and its outbox event."""
    pool = await asyncpg.create_pool(DSN, min_size=20, max_size=40)
    session_id = uuid.uuid4()
    starts = datetime.now(UTC) + timedelta(days=2)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO sessions (id, institution_id, department_code, resource_type, starts_at, "
            "ends_at, capacity, family_doctor_share, status, published_by, created_at, version) "
            "VALUES ($1, $2, 'XNK', 'specialist', $3, $4, $5, '0.40', 'open', 'bench', now(), 1)",
            session_id,
            HOSPITAL,
            starts,
            starts + timedelta(hours=4),
            CAPACITY,
        )
        await conn.executemany(
            "INSERT INTO slots (id, session_id, slot_no, pool, published_pool, status) "
            "VALUES ($1, $2, $3, $4, $4, 'free')",
            [
                (
                    uuid.uuid4(),
                    session_id,
                    i + 1,
                    "family_doctor" if i < 40 else "public",
                )
                for i in range(CAPACITY)
            ],
        )

    async def attempt(job: Any) -> int:
        resident, pool_name = job
        async with pool.acquire() as conn, conn.transaction():
            slot = await conn.fetchval(
                "UPDATE slots SET status = 'booked' WHERE id = (SELECT id FROM slots WHERE session_id = $1 "
                "AND pool = $2 AND status = 'free' ORDER BY slot_no LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
                session_id,
                pool_name,
            )
            if slot is None:
                return 409
            booking = uuid.uuid4()
            await conn.execute(
                "INSERT INTO bookings (id, slot_id, session_id, resident_id, pool, channel, booked_by, "
                "status, created_at) VALUES ($1, $2, $3, $4, $5, 'resident', 'bench', 'booked', now())",
                booking,
                slot,
                session_id,
                resident,
                pool_name,
            )
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, key, payload) VALUES ($1, 'referral.bookings', $2, "
                "$3::jsonb)",
                uuid.uuid4(),
                str(booking),
                json.dumps({"booking": str(booking)}),
            )
            return 201

    jobs = [(r, "family_doctor" if i % 5 < 2 else "public") for i, r in enumerate(residents)]
    elapsed, latencies, codes = await rush(attempt, jobs)
    await pool.close()
    booked, doubled = await overbooked(session_id)
    return {"elapsed": elapsed, "latencies": latencies, "codes": codes, "booked": booked, "doubled": doubled}


def report(name: str, r: dict[str, Any]) -> dict[str, float]:
    rate = len(r["codes"]) / r["elapsed"]
    p50, p99 = statistics.median(r["latencies"]), percentile(r["latencies"], 99)
    codes = {c: r["codes"].count(c) for c in sorted(set(r["codes"]))}
    print(f"{name:<28} {rate:>9.0f} {p50:>9.1f} {p99:>9.1f} {r['booked']:>8} {r['doubled']:>10}   {codes}")
    return {"rate": rate, "p50": p50, "p99": p99}


async def main() -> None:
    await reset_database()
    residents = [uuid.uuid4() for _ in range(ATTEMPTS)]
    contracted = {r for i, r in enumerate(residents) if i % 5 < 2}  # 40 % of attempts by family doctors
    await seed(residents, list(contracted))
    signer = DevSigner.generate()
    service = await run_service(signer, residents, contracted)
    baseline = await run_baseline(residents)
    print(
        f"\n{ATTEMPTS} attempts, {CLIENTS} concurrent clients, {CAPACITY} slots (40 family-doctor, 60 public)"
    )
    print(
        f"{'':<28} {'att/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'booked':>8} {'overbooked':>10}   status codes"
    )
    s = report("service (2 processes, HTTP)", service)
    b = report("raw asyncpg baseline", baseline)
    print(
        f"\nservice / baseline: throughput {s['rate'] / b['rate']:.2f}x, p50 {s['p50'] / b['p50']:.2f}x, "
        f"p99 {s['p99'] / b['p99']:.2f}x"
    )
    ok = (
        service["booked"] == baseline["booked"] == CAPACITY and service["doubled"] == baseline["doubled"] == 0
    )
    per_request = service["server_cpu"] / len(service["codes"]) * 1000
    print(
        f"service processes used {service['server_cpu']:.1f} CPU-seconds: {per_request:.1f} ms of CPU per attempt"
    )
    print("exactly 100 bookings, none overbooked" if ok else "BOOKING COUNT WRONG")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
