"""The operator's metrics move with what they measure, on the real PostgreSQL and Kafka: the outbox backlog
and its oldest event's age rise while no relay runs and fall to zero after a drain, and a service app's
/metrics shows them (measured by the watcher its lifespan starts); relay failures are counted; the lag of a
consumer that is behind is visible per partition, agrees with the broker, and is forgotten on stop.

A database of its own (the registry's migrations): the relay's advisory lock and the outbox are this
module's alone."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.app import create_app as create_registry
from services.registry.models import inbox, outbox
from services.registry.settings import RegistrySettings
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.events import EventEnvelope
from shared.metrics import CONSUMER_LAG, ConsumerLag
from shared.outbox import BACKLOG, OutboxRelay, measure_outbox, record_event
from shared.topics import ensure_topics

from ..conftest import KAFKA, PG, REGISTRY_MIGRATIONS, isolated_name, migrated_database, service_settings
from .test_idempotent_consumer import event, produce

NAME = isolated_name("ops_metrics_test")
OPS_DB = f"{PG}/{NAME}"


@pytest_asyncio.fixture(scope="module")
async def db() -> AsyncIterator[Database]:
    await migrated_database(OPS_DB, REGISTRY_MIGRATIONS, [])
    database = Database(OPS_DB)
    yield database
    await database.dispose()


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def record(db: Database, topic: str, events: list[EventEnvelope]) -> None:
    async with db.uow() as uow:
        for e in events:
            await record_event(uow.session, outbox, topic, e.subject or "k", e)
        await uow.commit()


async def unpublished(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(
            (
                await conn.execute(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
            ).scalar_one()
        )


async def test_backlog_rises_without_a_relay_and_falls_after_a_drain(db: Database) -> None:
    topic = f"test.ops.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic])
    assert await measure_outbox(db) == (0, 0.0)
    assert sample("outbox_unpublished_events", database=NAME) == 0

    await record(db, topic, [event(n) for n in range(5)])
    async with db.engine.begin() as conn:  # as if the relay had been away for two minutes
        await conn.execute(sa.text("UPDATE outbox SET created_at = now() - interval '120 seconds'"))
    count, age = await measure_outbox(db)
    assert count == 5 and 120 <= age < 180
    assert sample("outbox_unpublished_events", database=NAME) == 5
    assert 120 <= (sample("outbox_oldest_unpublished_age_seconds", database=NAME) or 0) < 180

    # a service's lifespan starts the watcher (no workers needed) and its /metrics exports the figures
    await record(db, topic, [event(n) for n in range(5, 8)])
    BACKLOG.labels(NAME).set(-1)
    app = create_registry(service_settings(RegistrySettings, OPS_DB))
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if sample("outbox_unpublished_events", database=NAME) == 8:
                break
            await asyncio.sleep(0.05)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://registry") as client:
            text = (await client.get("/metrics")).text
    assert f'outbox_unpublished_events{{database="{NAME}"}} 8.0' in text
    assert f'outbox_oldest_unpublished_age_seconds{{database="{NAME}"}}' in text

    published_before = sample("outbox_events_published_total", database=NAME) or 0
    assert await OutboxRelay(OPS_DB, KAFKA).drain() == 8
    assert await measure_outbox(db) == (0, 0.0)
    assert sample("outbox_unpublished_events", database=NAME) == 0
    assert sample("outbox_oldest_unpublished_age_seconds", database=NAME) == 0
    assert sample("outbox_events_published_total", database=NAME) == published_before + 8


async def test_relay_failures_are_counted_and_nothing_is_lost(db: Database) -> None:
    topic = f"test.ops.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic])
    await record(db, topic, [event(1)])
    errors_before = sample("outbox_publish_errors_total", database=NAME) or 0
    relay = OutboxRelay(OPS_DB, "127.0.0.1:9")  # no broker there: every pass fails
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(300):
            if (sample("outbox_publish_errors_total", database=NAME) or 0) >= errors_before + 2:
                break
            await asyncio.sleep(0.1)
    finally:
        relay.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (sample("outbox_publish_errors_total", database=NAME) or 0) >= errors_before + 2
    assert relay.published == 0 and await unpublished(db) == 1  # still there for the next relay
    assert await OutboxRelay(OPS_DB, KAFKA).drain() == 1


async def nothing(session: AsyncSession, event: EventEnvelope) -> None:
    """The inbox row is the whole effect here."""


async def apply(consumer: IdempotentConsumer, kafka: AIOKafkaConsumer, records_wanted: int) -> int:
    """Drive the consumer as its loop does: fetch, apply in one transaction, commit the offset."""
    applied = 0
    for _ in range(60):
        if applied >= records_wanted:
            break
        batches = await kafka.getmany(timeout_ms=500, max_records=records_wanted - applied)
        for tp, records in batches.items():
            await consumer.handle_batch(records)
            await kafka.commit({tp: records[-1].offset + 1})
            applied += len(records)
    return applied


async def test_lag_of_a_consumer_that_is_behind_is_visible_per_partition(db: Database) -> None:
    topic = f"test.lag.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic], partitions=1)
    await produce(topic, [event(n) for n in range(30)])
    group = f"lag-{uuid.uuid4().hex[:8]}"
    consumer = IdempotentConsumer(db, inbox, KAFKA, group, [topic], nothing)
    lag = ConsumerLag(group, every=3600)
    labels = {"group": group, "topic": topic, "partition": "0"}
    await consumer.start()
    try:
        kafka = consumer._consumer
        assert kafka is not None
        assert await apply(consumer, kafka, 10) == 10
        await lag.update(kafka)
        assert sample("consumer_lag_records", **labels) == 20
        assert await consumer.lag() == 20  # the broker's own figures (end offset - committed) agree

        CONSUMER_LAG.labels(group, topic, "0").set(-1)
        await lag.update(kafka)  # within `every`: reads nothing, changes nothing (the loop is not slowed)
        assert sample("consumer_lag_records", **labels) == -1

        assert await apply(consumer, kafka, 20) == 20
        await lag.update(kafka, force=True)
        assert sample("consumer_lag_records", **labels) == 0
    finally:
        lag.clear()
        await consumer.stop()
    assert sample("consumer_lag_records", **labels) is None  # a stopped consumer reports nothing
