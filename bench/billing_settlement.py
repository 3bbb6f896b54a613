"""Billing at county scale: one county, 2 communities, 150 institutions, 1,000,000 claims in a year.

1. Ingestion: claims posted through `POST /v1/claims:batch` (1,000 a batch, HIS tokens, 4 concurrent
   clients, two service processes), against a raw-asyncpg baseline that COPYs the same number of
   already-priced rows in the same run.
2. Year-end settlement (`POST .../settlement`: closes the 12 months — charges, provisional DIP,
   capitation — then final DIP, contract fees, deposits, surplus/overspend per community), against a
   raw SQL aggregate over the same claims in the same run.

Run: `make bench-billing` (starts PostgreSQL if needed). BENCH_CLAIMS and BENCH_INGEST change the sizes,
BENCH_BILLING_DB the scratch database (billing_bench), which each run drops and builds again.
The read model is seeded directly (registry events would fill it the same way; that path is tested).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from shared.devtokens import DevSigner
from shared.migrations import ensure_database, upgrade

ROOT = Path(__file__).parents[1]
PG = os.environ.get("TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:25432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
DB_NAME = os.environ.get("BENCH_BILLING_DB", "billing_bench")  # dropped and built again by every run
DB_URL = f"{PG}/{DB_NAME}"
DSN = DB_URL.replace("postgresql+asyncpg://", "postgresql://")
TOTAL = int(os.environ.get("BENCH_CLAIMS", "1000000"))
INGEST = int(os.environ.get("BENCH_INGEST", "100000"))
BATCH, CLIENTS, PORTS = 1000, 4, (18121, 18122)
COUNTY, YEAR = "411081", 2025  # a whole past year: no claim may be dated after today
RESIDENTS_PER_COMMUNITY = 100_000
GRASSROOTS = ["I10", "E11", "J06", "K29", "M54"]
OTHER = ["J18.9", "I20.0", "I63.9", "C34.9", "N18.5", "S72.0"]
rng = random.Random(20261122)


class County:
    def __init__(self) -> None:
        self.communities = [uuid.uuid4(), uuid.uuid4()]
        self.institutions: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}  # id → (community, tier)
        self.villages: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.residents: dict[uuid.UUID, list[uuid.UUID]] = {}
        for c in self.communities:
            self.institutions[uuid.uuid4()] = (c, "county")
            for _ in range(14):
                self.institutions[uuid.uuid4()] = (c, "township")
            villages = [uuid.uuid4() for _ in range(60)]
            for v in villages:
                self.institutions[v] = (c, "village")
            self.villages[c] = villages
            self.residents[c] = [uuid.uuid4() for _ in range(RESIDENTS_PER_COMMUNITY)]
        self.community_of = {r: c for c in self.communities for r in self.residents[c]}


async def reset_and_seed(county: County) -> None:
    conn = await asyncpg.connect(DSN.rsplit("/", 1)[0] + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await conn.close()
    await ensure_database(DB_URL)
    await asyncio.to_thread(upgrade, ROOT / "services/billing/migrations", DB_URL)
    conn = await asyncpg.connect(DSN)
    leads = {c: i for i, (c, t) in county.institutions.items() if t == "county"}
    await conn.executemany(
        "INSERT INTO rm_communities VALUES ($1, $2, $3, true, 1)",
        [(c, COUNTY, leads[c]) for c in county.communities],
    )
    # every institution is insurance-designated (定点): billing refuses the claims of one that is not
    await conn.copy_records_to_table(
        "rm_institutions",
        records=[
            (i, t, c, "lead" if t == "county" else "tight", True, True, 1)
            for i, (c, t) in county.institutions.items()
        ],
        columns=["id", "tier", "community_id", "membership", "insurance_designated", "active", "version"],
    )
    await conn.copy_records_to_table(
        "rm_residents",
        records=[
            (r, c, rng.choice(county.villages[c]), True, 1)
            for c in county.communities
            for r in county.residents[c]
        ],
        columns=["id", "community_id", "home_institution_id", "active", "version"],
    )
    teams = [(uuid.uuid4(), c, i) for i, (c, t) in county.institutions.items() if t == "township"]
    await conn.copy_records_to_table(
        "rm_teams",
        records=[(t, c, i, True, 1) for t, c, i in teams],
        columns=["id", "community_id", "institution_id", "active", "version"],
    )
    contracts = []
    for c in county.communities:
        own = [t for t in teams if t[1] == c]
        for r in county.residents[c][:30_000]:
            contracts.append(
                (uuid.uuid4(), r, rng.choice(own)[0], "active", date(YEAR, 1, 1), date(YEAR, 12, 31), 1)
            )
    await conn.copy_records_to_table(
        "rm_contracts",
        records=contracts,
        columns=["id", "resident_id", "team_id", "status", "start_date", "end_date", "version"],
    )
    await conn.copy_records_to_table(
        "rm_catalogue_entries",
        records=[(uuid.uuid4(), COUNTY, "grassroots", code, True, 1) for code in GRASSROOTS],
        columns=["id", "county_code", "catalogue", "icd10", "active", "version"],
    )
    await conn.close()


def parameters(county: County) -> dict[str, Any]:
    return {
        "individual_contribution": 40_000,
        "fiscal_subsidy": 64_000,
        "catastrophic_rate": "0.08",
        "tiers": {
            "village": {"ratio": "0.90", "deductible": 10_000},
            "community": {"ratio": "0.85", "deductible": 20_000},
            "township": {"ratio": "0.85", "deductible": 20_000},
            "county": {"ratio": "0.70", "deductible": 60_000},
        },
        "unreferred_county_ratio": "0.50",
        "dip_budget_rate": "0.40",
        "dip_estimated_point_value": "1500",
        "communities": [{"community_id": str(c), "covered_residents": 110_000} for c in county.communities],
    }


def random_claim(county: County, institution: uuid.UUID, n: int) -> dict[str, Any]:
    community, tier = county.institutions[institution]
    home = community if rng.random() < 0.95 else next(c for c in county.communities if c != community)
    kind = rng.choices(["outpatient", "inpatient", "day_ward"], [80, 18, 2])[0]
    if tier == "village":
        kind = "outpatient"
    eligible = rng.randint(2_000, 50_000) if kind == "outpatient" else rng.randint(200_000, 3_000_000)
    diagnosis = rng.choice(GRASSROOTS + OTHER)
    claim: dict[str, Any] = {
        "claim_no": f"C{n}",
        "institution_id": str(institution),
        "resident_id": str(rng.choice(county.residents[home])),
        "kind": kind,
        "service_date": (date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))).isoformat(),
        "diagnosis_icd10": diagnosis,
        "total_cost": eligible + rng.randint(0, 20_000),
        "eligible_cost": eligible,
    }
    if kind != "outpatient":
        claim |= {
            "dip_group": f"{diagnosis[:3]}-1",
            "dip_points": str(Decimal(rng.randint(2_000, 40_000)) / 10),
        }
    return claim


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_services(signer: DevSigner) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "RUN_WORKERS": "false",
        "AUTH_JWKS": json.dumps(signer.jwks()),
        "LOG_LEVEL": "WARNING",
    }
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.billing.app:create_app",
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


async def wait_ready(http: aiohttp.ClientSession) -> None:
    for port in PORTS:
        for _ in range(150):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)


async def ingest(http: aiohttp.ClientSession, signer: DevSigner, county: County) -> dict[str, Any]:
    institutions = [i for i, (_c, t) in county.institutions.items()]
    tokens = {i: "Bearer " + signer.mint("his_system", institution_id=i) for i in institutions}
    batches = []
    n = 0
    for b in range(INGEST // BATCH):
        inst = institutions[b % len(institutions)]
        batches.append((inst, [random_claim(county, inst, n + k) for k in range(BATCH)]))
        n += BATCH
    queue: asyncio.Queue[tuple[uuid.UUID, list[dict[str, Any]]]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: list[int] = []

    async def client(k: int) -> None:
        while not queue.empty():
            inst, claims = queue.get_nowait()
            t0 = time.perf_counter()
            async with http.post(
                f"http://127.0.0.1:{PORTS[k % 2]}/v1/claims:batch",
                json={"claims": claims},
                headers={"Authorization": tokens[inst]},
            ) as r:
                body = await r.json()
                statuses.append(r.status)
                assert r.status == 200 and body["created"] == len(claims), body
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[client(k) for k in range(CLIENTS)])
    elapsed = time.perf_counter() - start
    return {"claims": n, "elapsed": elapsed, "latencies": latencies}


async def baseline_ingest(county: County, count: int) -> float:
    """COPY already-priced rows: the cost of storing claims with no checks, lookups or pricing."""
    conn = await asyncpg.connect(DSN)
    institutions = list(county.institutions)
    rows = []
    for n in range(count):
        inst = institutions[n % len(institutions)]
        c = random_claim(county, inst, n)
        community, tier = county.institutions[inst]
        res = uuid.UUID(c["resident_id"])
        home = next(
            k for k in county.communities if res in county.residents[k][:1] or True
        )  # community by draw
        points = Decimal(c["dip_points"]) if "dip_points" in c else None
        day = date.fromisoformat(c["service_date"])
        share = int(c["eligible_cost"] * 0.7)
        rows.append(
            (
                uuid.uuid4(),
                "RAW" + c["claim_no"],
                "0" * 64,
                inst,
                community,
                tier,
                res,
                community,
                COUNTY,
                YEAR,
                day.month,
                day,
                c["kind"],
                c["diagnosis_icd10"],
                False,
                c.get("dip_group"),
                points,
                points,
                c["total_cost"],
                c["eligible_cost"],
                0,
                Decimal("0.7"),
                share,
                None,
                None,
                False,
                False,
            )
        )
        del home
    cols = [
        "id",
        "claim_no",
        "fingerprint",
        "institution_id",
        "institution_community_id",
        "tier",
        "resident_id",
        "community_id",
        "county_code",
        "year",
        "month",
        "service_date",
        "kind",
        "diagnosis_icd10",
        "grassroots_disease",
        "dip_group",
        "dip_points",
        "weighted_points",
        "total_cost",
        "eligible_cost",
        "deductible_used",
        "ratio",
        "insurance_share",
        "referral_id",
        "chain_id",
        "referred",
        "out_of_community",
    ]
    now = datetime.now(UTC)
    start = time.perf_counter()
    async with conn.transaction():
        for k in range(0, len(rows), BATCH):
            await conn.copy_records_to_table(
                "claims", records=[(*r, now) for r in rows[k : k + BATCH]], columns=[*cols, "received_at"]
            )
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


BULK_SQL = """
INSERT INTO claims (id, claim_no, fingerprint, institution_id, institution_community_id, tier, resident_id,
    community_id, county_code, year, month, service_date, kind, diagnosis_icd10, grassroots_disease,
    dip_group, dip_points, weighted_points, total_cost, eligible_cost, deductible_used, ratio,
    insurance_share, referral_id, chain_id, referred, out_of_community, received_at)
SELECT gen_random_uuid(), 'BULK' || g, repeat('0', 64), i.id, i.community_id, i.tier, r.id, r.community_id,
    $1, $2, extract(month FROM d)::int, d, k.kind, 'J18.9', false,
    CASE WHEN k.kind <> 'outpatient' THEN 'J18-1' END,
    CASE WHEN k.kind <> 'outpatient' THEN p END,
    CASE WHEN k.kind <> 'outpatient' THEN round(p * CASE i.tier WHEN 'county' THEN 1 WHEN 'village' THEN 0.7 ELSE 0.85 END, 4) END,
    e + 1000, e, least(e, 20000), 0.8500, ((e - least(e, 20000)) * 0.85)::bigint, NULL, NULL, false,
    i.community_id <> r.community_id, now()
FROM generate_series(1::bigint, $3::bigint) g
CROSS JOIN LATERAL (SELECT (make_date($2, 1, 1) + (g % 365)::int)::date AS d,
                           (200 + (g * 7919) % 4000)::numeric AS p) x
CROSS JOIN LATERAL (SELECT CASE WHEN g % 10 < 8 THEN 'outpatient' WHEN g % 50 = 0 THEN 'day_ward' ELSE 'inpatient' END AS kind) k
CROSS JOIN LATERAL (SELECT CASE WHEN k.kind = 'outpatient' THEN 2000 + (g * 104729) % 48000
                                ELSE 200000 + (g * 1299709) % 2800000 END::bigint AS e) m
JOIN LATERAL (SELECT id, community_id, tier FROM bench_institutions WHERE n = g % 150 + (0 * g)) i ON true
JOIN bench_other o ON o.community_id = i.community_id
JOIN bench_residents r ON r.community_id = CASE WHEN g % 20 = 0 THEN o.other_id ELSE i.community_id END
                      AND r.n = (g * 31) % 100000
"""


async def bulk_fill(count: int) -> float:
    """The rest of the year's claims straight into the table (95 % from the institution's own community)."""
    conn = await asyncpg.connect(DSN)
    start = time.perf_counter()
    for sql in (
        "CREATE TEMP TABLE bench_institutions AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, "
        "community_id, tier FROM rm_institutions",
        "CREATE INDEX ON bench_institutions (n)",
        "CREATE TEMP TABLE bench_residents AS SELECT row_number() OVER (PARTITION BY community_id ORDER BY id) - 1 "
        "AS n, id, community_id FROM rm_residents",
        "CREATE INDEX ON bench_residents (community_id, n)",
        "CREATE TEMP TABLE bench_other AS SELECT a.id AS community_id, b.id AS other_id "
        "FROM rm_communities a JOIN rm_communities b ON a.id <> b.id",
        "ANALYZE bench_institutions, bench_residents, bench_other",
    ):
        await conn.execute(sql)
    await conn.execute(BULK_SQL, COUNTY, YEAR, count)
    await conn.execute("VACUUM ANALYZE claims")
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed


async def baseline_aggregate() -> tuple[float, int]:
    """The plain aggregate a settlement must at least read: the year's claims by community, institution,
    kind and whether they were out of the community."""
    conn = await asyncpg.connect(DSN)
    start = time.perf_counter()
    rows = await conn.fetch(
        "SELECT community_id, institution_id, kind, out_of_community, count(*), sum(insurance_share), "
        "sum(weighted_points) FROM claims WHERE county_code = $1 AND year = $2 GROUP BY 1, 2, 3, 4",
        COUNTY,
        YEAR,
    )
    elapsed = time.perf_counter() - start
    await conn.close()
    return elapsed, len(rows)


async def main() -> None:
    signer = DevSigner.generate()
    county = County()
    print(
        f"seeding the read model: 2 communities, {len(county.institutions)} institutions, "
        f"{2 * RESIDENTS_PER_COMMUNITY:,} residents, 60,000 contracts …",
        flush=True,
    )
    await reset_and_seed(county)
    procs = start_services(signer)
    officer = {"Authorization": "Bearer " + signer.mint("insurance_officer", subject="bench-officer")}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS + 2)) as http:
            await wait_ready(http)
            base = f"http://127.0.0.1:{PORTS[0]}/v1/insurance-years/{COUNTY}/{YEAR}"
            for path, body in (("parameters", parameters(county)), ("budgets", None)):
                async with http.post(f"{base}/{path}", json=body, headers=officer) as r:
                    assert r.status in (200, 201), await r.text()
            for month in range(1, 13):
                async with http.post(f"{base}/prepayments/{month}", headers=officer) as r:
                    assert r.status == 200, await r.text()
            print(
                f"ingesting {INGEST:,} claims through POST /v1/claims:batch ({BATCH} a batch, {CLIENTS} clients, "
                f"{len(PORTS)} service processes) …",
                flush=True,
            )
            service = await ingest(http, signer, county)
            raw_seconds = await baseline_ingest(county, INGEST)
            rest = TOTAL - 2 * INGEST
            fill_seconds = await bulk_fill(rest) if rest > 0 else 0.0
            agg_seconds, groups = await baseline_aggregate()
            print(f"settling the year over {TOTAL:,} claims …", flush=True)
            t0 = time.perf_counter()
            async with http.post(
                f"{base}/settlement",
                headers=officer,
                json={"scores": {str(c): "92" for c in county.communities}},
                timeout=aiohttp.ClientTimeout(total=600),
            ) as r:
                settlement = await r.json()
                assert r.status == 200 and settlement["posted"], settlement
            settle_seconds = time.perf_counter() - t0
            async with http.get(f"{base}/trial-balance", headers=officer) as r:
                tb = await r.json()
            async with http.post(f"{base}/settlement", headers=officer, json={"scores": {}}) as r:
                again = await r.json()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    conn = await asyncpg.connect(DSN)
    claims = await conn.fetchval("SELECT count(*) FROM claims")
    await conn.close()

    rate = service["claims"] / service["elapsed"]
    raw_rate = INGEST / raw_seconds
    lat = service["latencies"]
    print()
    print(f"claims in the year: {claims:,}   (bulk SQL fill of {max(rest, 0):,} took {fill_seconds:.1f} s)")
    print("ingestion                       claims/s   batch p50    batch p99")
    print(
        f"  service (batch endpoint)    {rate:10,.0f}  {statistics.median(lat):8.0f} ms  {percentile(lat, 99):8.0f} ms"
    )
    print(f"  baseline (asyncpg COPY)     {raw_rate:10,.0f}")
    print(
        f"  service / baseline          {rate / raw_rate:10.2f}     target ≥ 5,000 claims/s: {'met' if rate >= 5000 else 'NOT met'}"
    )
    print("year-end settlement")
    print(
        f"  service (12 month closes + settlement)  {settle_seconds:6.2f} s   target ≤ 30 s: {'met' if settle_seconds <= 30 else 'NOT met'}"
    )
    print(f"  baseline (one raw SQL aggregate, {groups} groups)  {agg_seconds:6.2f} s")
    print(f"  service / baseline                      {settle_seconds / agg_seconds:6.1f}×")
    print(
        f"trial balance balanced: {tb['balanced']} (debit {tb['total_debit']:,} fen = credit {tb['total_credit']:,} fen, "
        f"{tb['journals']} journals); settling again posted: {again['posted']}"
    )
    for s in settlement["journals"]:
        print(
            f"  community {s['community_id'][:8]}: budget {s['budget']:,}  DIP point value {s.get('dip_point_value')}  "
            f"surplus {s['surplus']:,}  overspend {s['overspend']:,}  deposit back {s['deposit_returned']:,}"
        )


if __name__ == "__main__":
    asyncio.run(main())
