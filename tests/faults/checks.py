"""What must hold after the faults, read straight from the services' databases and the broker: every
acknowledged write exists exactly once, every event reached every consumer once and the read models
equal their sources, nothing is dead-lettered, no slot is booked twice or past capacity, the books
balance and every claim is priced with its referral."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from services.billing.readmodel import CONSUMED_TOPICS as BILLING_TOPICS
from services.referral.readmodel import REGISTRY_TOPICS as REFERRAL_TOPICS

from .load import Write
from .platform import FaultPlatform

# kind of write -> (service database, the table its entity lands in)
HOME = {
    "resident": ("registry", "residents"),
    "contract": ("registry", "contracts"),
    "session": ("referral", "sessions"),
    "referral": ("referral", "referrals"),
    "booking": ("referral", "bookings"),
    "claim": ("billing", "claims"),
}
CONSUMERS = {"referral": REFERRAL_TOPICS, "billing": BILLING_TOPICS}
# read model in a consumer's database == its source table in the producer's database
READ_MODELS = [
    (
        "registry",
        "SELECT id, community_id FROM residents",
        "referral",
        "SELECT id, community_id FROM rm_residents",
    ),
    (
        "registry",
        "SELECT id, community_id FROM residents",
        "billing",
        "SELECT id, community_id FROM rm_residents",
    ),
    (
        "registry",
        "SELECT id, status, version FROM contracts",
        "referral",
        "SELECT id, status, version FROM rm_contracts",
    ),
    (
        "registry",
        "SELECT id, status, version FROM contracts",
        "billing",
        "SELECT id, status, version FROM rm_contracts",
    ),
    (
        "referral",
        "SELECT id, status, version FROM referrals",
        "billing",
        "SELECT id, status, version FROM rm_referrals",
    ),
]


@dataclass
class Verdict:
    lost: list[Write] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    duplicated_refs: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.problems)


class Inspector:
    def __init__(self, platform: FaultPlatform) -> None:
        self.platform = platform
        self.dsn = platform.pg_base.replace("postgresql+asyncpg://", "postgresql://")

    async def rows(self, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(f"{self.dsn}/faults_{service}", timeout=5)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def unpublished(self) -> int:
        total = 0
        for service in ("registry", "referral", "billing"):
            sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            total += (await self.rows(service, sql))[0][0]
        return total

    async def missing_deliveries(self) -> dict[str, int]:
        """Per consumer: published events on its topics that are not in its inbox."""
        published: dict[str, set[str]] = {}
        for service in ("registry", "referral"):
            for r in await self.rows(service, "SELECT event_id::text, topic FROM outbox"):
                published.setdefault(r["topic"], set()).add(r["event_id"])
        missing = {}
        for consumer, topics in CONSUMERS.items():
            seen = {r[0] for r in await self.rows(consumer, "SELECT event_id FROM inbox")}
            missing[consumer] = sum(len(published.get(t, set()) - seen) for t in topics)
        return missing

    async def dead_lettered(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.platform.kafka)
        await admin.start()
        try:
            dlts = [t for t in await admin.list_topics() if t.endswith(".dlt")]
            described = await admin.describe_topics(dlts) if dlts else []
        finally:
            await admin.close()
        parts = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        if not parts:
            return 0
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.platform.kafka,
            group_id=f"fault-check-{uuid.uuid4()}",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(parts)
            starts = await consumer.beginning_offsets(parts)
            return sum(ends[p] - starts[p] for p in parts)
        finally:
            await consumer.stop()

    async def settled(self) -> bool:
        """Every event published and delivered: the state the checks compare."""
        return await self.unpublished() == 0 and not any((await self.missing_deliveries()).values())

    async def verdict(self, writes: Sequence[Write]) -> Verdict:
        v = Verdict()
        for kind, (service, table) in HOME.items():
            acked = [w for w in writes if w.kind == kind and w.acked]
            ids = [w.entity for w in acked]
            found = Counter(
                str(r[0])
                for r in await self.rows(service, f"SELECT id FROM {table} WHERE id = ANY($1::uuid[])", ids)
            )
            v.lost += [w for w in acked if found[w.entity] != 1]
        # an acknowledged acceptance is in the referral's timeline exactly once
        accepts = Counter(
            str(r[0])
            for r in await self.rows(
                "referral",
                "SELECT referral_id FROM referral_timeline WHERE action = 'accept' AND referral_id = ANY($1::uuid[])",
                [w.entity for w in writes if w.kind == "accept" and w.acked],
            )
        )
        v.lost += [w for w in writes if w.kind == "accept" and w.acked and accepts[w.entity] == 0]
        v.duplicated += [f"acceptances of referral {r} x{n}" for r, n in accepts.items() if n > 1]
        for ref, text in await self._duplicates():
            v.duplicated.append(text)
            v.duplicated_refs.add(ref)
        missing = await self.missing_deliveries()
        v.problems += [f"{n} events never reached the {c} consumer" for c, n in missing.items() if n]
        if unpublished := await self.unpublished():
            v.problems.append(f"{unpublished} events still unpublished in the outboxes")
        v.problems += await self._read_models()
        if dead := await self.dead_lettered():
            v.problems.append(f"{dead} records in .dlt topics")
        v.problems += await self._slots()
        v.problems += await self._books(writes)
        return v

    async def _duplicates(self) -> list[tuple[str, str]]:
        found = []
        queries = {
            "residents per load name": (
                "registry",
                "SELECT name, count(*) FROM residents WHERE name LIKE '负载%' GROUP BY name HAVING count(*) > 1",
            ),
            "contracts per resident": (
                "registry",
                "SELECT resident_id, count(*) FROM contracts GROUP BY resident_id HAVING count(*) > 1",
            ),
            "referrals per resident": (
                "referral",
                "SELECT resident_id, count(*) FROM referrals WHERE clinical_summary LIKE '负载链%' GROUP BY resident_id HAVING count(*) > 1",
            ),
            "bookings per resident": (
                "referral",
                "SELECT resident_id, count(*) FROM bookings GROUP BY resident_id HAVING count(*) > 1",
            ),
            "claims per claim number": (
                "billing",
                "SELECT claim_no, count(*) FROM claims GROUP BY claim_no HAVING count(*) > 1",
            ),
        }
        for what, (service, sql) in queries.items():
            found += [(str(r[0]), f"{what}: {r[0]} x{r[1]}") for r in await self.rows(service, sql)]
        return found

    async def _read_models(self) -> list[str]:
        problems = []
        for source, source_sql, consumer, copy_sql in READ_MODELS:
            truth = {tuple(r) for r in await self.rows(source, source_sql)}
            copy = {tuple(r) for r in await self.rows(consumer, copy_sql)}
            if truth != copy:
                problems.append(
                    f"{consumer} read model differs from {source} ({copy_sql.split()[-1]}): "
                    f"{len(truth - copy)} missing or stale, {len(copy - truth)} extra"
                )
        return problems

    async def _slots(self) -> list[str]:
        rows = await self.rows(
            "referral",
            "SELECT s.id, s.capacity, count(b.id) FILTER (WHERE b.status = 'booked') AS booked,"
            " (SELECT count(*) FROM slots x WHERE x.session_id = s.id AND x.status = 'booked') AS taken"
            " FROM sessions s LEFT JOIN bookings b ON b.session_id = s.id GROUP BY s.id",
        )
        return [
            f"session {r['id']}: {r['booked']} bookings, {r['taken']} slots taken, capacity {r['capacity']}"
            for r in rows
            if r["booked"] > r["capacity"] or r["booked"] != r["taken"]
        ]

    async def _books(self, writes: Sequence[Write]) -> list[str]:
        problems = []
        off = await self.rows(
            "billing",
            "SELECT journal_id, sum(amount) FROM ledger_lines GROUP BY journal_id HAVING sum(amount) <> 0",
        )
        problems += [f"journal {r[0]} does not balance: {r[1]} fen" for r in off]
        claims = [w.entity for w in writes if w.kind == "claim" and w.acked]
        wrong = await self.rows(
            "billing",
            "SELECT claim_no, pricing, referred FROM claims WHERE id = ANY($1::uuid[])"
            " AND (pricing <> 'final' OR NOT referred)",
            claims,
        )
        problems += [f"claim {r[0]} priced {r[1]}, referred={r[2]}" for r in wrong]
        return problems
