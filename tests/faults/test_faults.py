"""The bounded fault-injection run inside `make test` (`make faults` is the long one): the platform on its
own PostgreSQL, Kafka and Redis, under load, through every fault; then nothing acknowledged is lost or
doubled and every invariant holds. A second part spoils the data on purpose, one way per invariant, to
show that the checks would have seen it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from .checks import Inspector, Verdict
from .load import Write
from .platform import FaultPlatform
from .suite import FAULTS, Row, report, run

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def platform() -> Iterator[FaultPlatform]:
    with FaultPlatform(demo_residents=300) as p:
        yield p


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outcome(platform: FaultPlatform) -> tuple[list[Row], Verdict, list[Write]]:
    """The bounded run: every fault once, with a lighter load and 4 s outages."""
    return await run(platform, outage=4, lead=3, tail=8, workers=3)


async def test_faults_lose_and_double_nothing(
    platform: FaultPlatform, outcome: tuple[list[Row], Verdict, list[Write]]
) -> None:
    rows, verdict, writes = outcome
    print(report(rows, verdict, writes))
    assert verdict.clean, report(rows, verdict, writes)
    assert [r.fault for r in rows] == [f.name for f in FAULTS]
    for r in rows:
        assert r.sent > 0 and r.acked == r.sent, report(rows, verdict, writes)  # retries carried every write
        assert r.lost == r.duplicated == r.refused == 0, r
        assert r.recovery is not None and r.recovery < 30, r
    assert platform.procs["referral"].restarts == 1  # the SIGKILL, and the supervisor's restart


async def test_the_checks_see_a_spoiled_platform(
    platform: FaultPlatform, outcome: tuple[list[Row], Verdict, list[Write]]
) -> None:
    """Each tampering stands for one failure the suite exists to catch (on what the run left behind)."""
    inspector = Inspector(platform)
    dsn = inspector.dsn
    billing = await asyncpg.connect(f"{dsn}/faults_billing")
    referral = await asyncpg.connect(f"{dsn}/faults_referral")
    try:
        claim = await billing.fetchrow(
            "SELECT id, claim_no FROM claims WHERE claim_no LIKE 'FAULT-%' LIMIT 1"
        )
        assert claim is not None
        acked = Write(
            "claim", "spoiled", "k", 0.0, status=201, entity=str(claim["id"]), ref=claim["claim_no"]
        )
        # an acknowledged claim lost, and its number posted twice more (as if by two other hospitals)
        await billing.execute("CREATE TEMP TABLE copies AS SELECT * FROM claims WHERE id = $1", claim["id"])
        for _ in range(2):
            await billing.execute(
                "UPDATE copies SET id = gen_random_uuid(), institution_id = gen_random_uuid()"
            )
            await billing.execute("INSERT INTO claims SELECT * FROM copies")
        await billing.execute("DELETE FROM claims WHERE id = $1", claim["id"])
        # an event that never reached a consumer, and a read model row gone stale
        await billing.execute("DELETE FROM inbox WHERE ctid = (SELECT ctid FROM inbox LIMIT 1)")
        await referral.execute(
            "UPDATE rm_residents SET community_id = gen_random_uuid() WHERE ctid = (SELECT ctid FROM rm_residents LIMIT 1)"
        )
        # a slot booked twice
        await referral.execute(
            "UPDATE slots SET status = 'free' WHERE id = (SELECT slot_id FROM bookings WHERE status = 'booked' LIMIT 1)"
        )
    finally:
        await billing.close()
        await referral.close()
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka)
    await producer.start()
    try:  # a record set aside
        await producer.send_and_wait("registry.residents.dlt", b"{}", key=str(uuid.uuid4()).encode())
    finally:
        await producer.stop()

    verdict = await inspector.verdict([acked])
    text = "\n".join(verdict.problems)
    assert [w.entity for w in verdict.lost] == [acked.entity]
    assert any(claim["claim_no"] in d for d in verdict.duplicated)
    assert "events never reached the billing consumer" in text
    assert "referral read model differs from registry" in text
    assert "1 records in .dlt topics" in text
    assert "slots taken" in text
