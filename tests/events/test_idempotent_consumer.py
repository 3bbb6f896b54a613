"""The shared idempotent consumer on the real broker: redelivery has its effect once, offsets follow
effects, poison messages go to the dead-letter topic.

The effect here is a row in a scratch table this test creates next to the migrated schema: the
consumer under test is shared/ code that every service will wrap around its own handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.registry.models import inbox
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.events import EventEnvelope
from shared.topics import ensure_topics

from ..conftest import KAFKA, REGISTRY_DB


@pytest_asyncio.fixture
async def effects(registry_engine: AsyncEngine) -> AsyncIterator[str]:
    async with registry_engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS test_effects (event_id text, n int)"))
        await conn.execute(sa.text("TRUNCATE test_effects, inbox"))
    yield "test_effects"


async def record_effect(session: AsyncSession, event: EventEnvelope) -> None:
    if event.data.get("poison"):
        raise ValueError("cannot handle this event")
    await session.execute(
        sa.text("INSERT INTO test_effects VALUES (:id, :n)"), {"id": event.id, "n": event.data["n"]}
    )


async def effect_rows(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        return [
            tuple(r) for r in (await conn.execute(sa.text("SELECT event_id, n FROM test_effects ORDER BY n")))
        ]


async def produce(topic: str, events: list[EventEnvelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(topic, e.to_bytes(), key=b"k")
    finally:
        await producer.stop()


async def run_until(
    consumer: IdempotentConsumer, check: Callable[[], Awaitable[bool]], seconds: float = 30
) -> None:
    task = asyncio.create_task(consumer.run_forever())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not await check():
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def event(n: int, **data: object) -> EventEnvelope:
    return EventEnvelope(type="test.thing", source="/test", subject=f"thing/{n}", data={"n": n, **data})


async def test_redelivered_event_has_its_effect_once(effects: str, registry_engine: AsyncEngine) -> None:
    topic = f"test.inbox.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic])
    first, second = event(1), event(2)
    await produce(topic, [first, first, second, first])  # the relay may publish an event more than once
    db = Database(REGISTRY_DB)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = IdempotentConsumer(db, inbox, KAFKA, group, [topic], record_effect)

    async def all_seen() -> bool:
        return consumer.processed >= 2 and len(await effect_rows(registry_engine)) >= 2

    await run_until(consumer, check=all_seen)
    assert await effect_rows(registry_engine) == [(first.id, 1), (second.id, 2)]
    # offsets were committed after the effects: the group stands after the four messages
    probe = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = probe.partitions_for_topic(topic) or set()
        if not partitions:
            await probe._client.force_metadata_update()
            partitions = probe.partitions_for_topic(topic) or set()
        committed = [await probe.committed(TopicPartition(topic, p)) for p in partitions]
    finally:
        await probe.stop()
    assert sorted(c for c in committed if c is not None) == [4]
    # a restart that lost its offsets (crash after the effect, before the commit) sees all four again
    replay = IdempotentConsumer(db, inbox, KAFKA, group, [topic], record_effect)
    await replay.start()
    assert replay._consumer is not None
    await asyncio.sleep(0.5)
    for tp in replay._consumer.assignment():
        replay._consumer.seek(tp, 0)
    batches = await replay._consumer.getmany(timeout_ms=3000)
    for records in batches.values():
        for record in records:
            await replay.handle(record)
    await replay.stop()
    assert sum(len(r) for r in batches.values()) == 4  # all four deliveries came again
    assert replay.processed == 0
    assert await effect_rows(registry_engine) == [(first.id, 1), (second.id, 2)]
    async with registry_engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM inbox WHERE consumer = :g"), {"g": group}) == 2
    await db.dispose()


async def test_poison_message_goes_to_dead_letter_and_the_partition_moves_on(
    effects: str, registry_engine: AsyncEngine
) -> None:
    topic = f"test.dlt.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic, f"{topic}.dlt"])
    bad, good = event(1, poison=True), event(2)
    await produce(topic, [bad, good])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    await producer.send_and_wait(topic, b"not json at all", key=b"k")
    await producer.stop()
    db = Database(REGISTRY_DB)
    consumer = IdempotentConsumer(db, inbox, KAFKA, f"g-{uuid.uuid4().hex[:8]}", [topic], record_effect)

    async def settled() -> bool:
        return consumer.dead_lettered >= 2 and consumer.processed >= 1

    await run_until(consumer, check=settled)
    assert await effect_rows(registry_engine) == [(good.id, 2)]
    dlt = AIOKafkaConsumer(
        f"{topic}.dlt",
        bootstrap_servers=KAFKA,
        group_id=f"d-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await dlt.start()
    records = []
    try:
        for _ in range(20):
            for rs in (await dlt.getmany(timeout_ms=300)).values():
                records += rs
            if len(records) >= 2:
                break
    finally:
        await dlt.stop()
    assert len(records) == 2
    headers = dict(records[0].headers)
    assert b"cannot handle this event" in headers["error"] and headers["original_topic"] == topic.encode()
    assert records[0].value == bad.to_bytes() and records[1].value == b"not json at all"
    await db.dispose()
