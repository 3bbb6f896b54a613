"""Per-key order end to end (issue #12): events that concurrent transactions write for one key reach
Kafka in the order those transactions committed, although each draws its seq before committing.

The registry's migrated database and outbox; a fresh topic and key per test, so reruns never collide."""

from __future__ import annotations

import asyncio
import random
import uuid

import sqlalchemy as sa

from services.registry.models import outbox
from shared.db import Database
from shared.events import EventEnvelope, OutgoingEvent
from shared.outbox import OutboxRelay, key_bucket, record_event
from shared.topics import ensure_topics

from ..conftest import KAFKA, REGISTRY_DB
from .kafka_helpers import collect

WRITERS = 20
SET_COUNT = sa.text(
    "UPDATE outbox SET payload = jsonb_set(payload, '{data,count}', to_jsonb(CAST(:seen AS int)))"
    " WHERE event_id = :id"
)


def tick(key: str, **data: object) -> EventEnvelope:
    return EventEnvelope(type="test.order", source="/test", subject=f"order/{key}", data=dict(data))


async def fresh_topic_and_key() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    topic = f"test.outbox-order.{run}"
    await ensure_topics(KAFKA, [topic])
    return topic, f"aggregate-{run}"


async def published(topic: str, key: str, count: int) -> list[EventEnvelope]:
    """Drain the outbox, then read back what reached the topic for `key`, in partition order."""
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    events = await collect(KAFKA, topic, lambda evs: len(evs) >= count)
    return [e for e in events if e.subject == f"order/{key}"]


async def test_a_later_writer_of_the_key_waits_so_kafka_order_is_commit_order(registry_db: str) -> None:
    """A records first and commits late; B records meanwhile and would commit first without the key lock,
    with the higher seq: the relay would then publish a, b while the commits were b, a."""
    topic, key = await fresh_topic_and_key()
    db = Database(REGISTRY_DB)
    commits: list[str] = []
    a_recorded = asyncio.Event()

    async def write(name: str, hold: float) -> None:
        async with db.uow() as uow:
            await record_event(uow.session, outbox, topic, key, tick(key, name=name))
            if name == "a":
                a_recorded.set()
            await asyncio.sleep(hold)
            await uow.commit()
            commits.append(name)

    try:
        a = asyncio.create_task(write("a", 0.5))
        await a_recorded.wait()
        b = asyncio.create_task(write("b", 0.0))
        await asyncio.gather(a, b)
    finally:
        await db.dispose()

    events = await published(topic, key, 2)
    assert [e.data["name"] for e in events] == commits
    assert commits == ["a", "b"], "B committed without waiting for A's lock on the key"


async def test_concurrent_writers_of_one_key_are_published_in_commit_order(registry_db: str) -> None:
    """Each writer counts, in its own transaction after recording, the key's rows it can see: with the
    key locked until commit, the n-th writer to commit sees the n-1 committed before it plus its own, so
    the counts are 1..N in commit order, and Kafka must carry them in that order (without the lock
    writers overlap, see fewer rows, and counts repeat)."""
    topic, key = await fresh_topic_and_key()
    db = Database(REGISTRY_DB, pool_size=WRITERS)
    rng = random.Random()

    async def write(writer: int) -> None:
        await asyncio.sleep(rng.uniform(0, 0.01))
        async with db.uow() as uow:
            event = tick(key, writer=writer)
            await record_event(uow.session, outbox, topic, key, event)
            seen = await uow.session.scalar(
                sa.select(sa.func.count()).where(outbox.c.topic == topic, outbox.c.key == key)
            )
            await uow.session.execute(SET_COUNT, {"seen": seen, "id": uuid.UUID(event.id)})
            await asyncio.sleep(rng.uniform(0, 0.04))
            await uow.commit()

    try:
        await asyncio.gather(*(write(n) for n in range(WRITERS)))
    finally:
        await db.dispose()

    events = await published(topic, key, WRITERS)
    assert sorted(e.data["writer"] for e in events) == list(range(WRITERS))
    assert [e.data["count"] for e in events] == list(range(1, WRITERS + 1))


async def test_commits_raising_events_for_the_same_keys_in_opposite_orders_never_deadlock(
    registry_db: str,
) -> None:
    """Each commit locks all its key buckets in one statement, in ascending order: twenty pairs of units of
    work raising events for keys A, B and B, A at the same moment all commit (locking per event in the
    order raised deadlocks such pairs: PostgreSQL would abort one of each with 40P01)."""
    topic, base = await fresh_topic_and_key()
    a = f"{base}-a"
    b = next(f"{base}-b{n}" for n in range(100) if key_bucket(f"{base}-b{n}") != key_bucket(a))
    db = Database(REGISTRY_DB)
    start = asyncio.Event()

    async def write(keys: tuple[str, str]) -> None:
        async with db.uow() as uow:
            uow.collect(*(OutgoingEvent(topic, k, tick(k, name=k)) for k in keys))
            await start.wait()
            await uow.commit()

    try:
        writers = [asyncio.create_task(write((a, b) if n % 2 else (b, a))) for n in range(40)]
        await asyncio.sleep(0.2)
        start.set()
        results = await asyncio.gather(*writers, return_exceptions=True)
        assert [r for r in results if r is not None] == []
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT count(*) FROM outbox WHERE topic = :t"), {"t": topic})
            ).scalar_one()
        assert rows == 80
    finally:
        await db.dispose()
