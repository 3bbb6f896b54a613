"""Registry changes reach Kafka through the outbox, and nothing is lost when the relay dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.models import outbox
from shared.db import Database
from shared.events import EventEnvelope
from shared.outbox import OutboxRelay, record_event

from ..conftest import KAFKA, REGISTRY_DB, TEST_PII_KEY
from ..integration.county import COUNTY, build_county
from .kafka_helpers import collect


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")) or 0)


async def test_institution_created_reaches_a_kafka_consumer(
    client: AsyncClient, registry_engine: AsyncEngine
) -> None:
    c = await build_county(client)  # committed while no relay runs
    assert await unpublished(registry_engine) > 0
    relay = OutboxRelay(REGISTRY_DB, KAFKA)
    task = asyncio.create_task(relay.run())
    try:
        events = await collect(
            KAFKA,
            "registry.institutions",
            lambda evs: any(e.subject == f"institution/{c.hospital['id']}" for e in evs),
        )
        for _ in range(200):  # the relay marks rows published once Kafka acknowledged all of them
            if await unpublished(registry_engine) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        relay.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    mine = [e for e in events if e.subject == f"institution/{c.hospital['id']}"]
    assert mine, "the institution event never reached Kafka"
    event = mine[-1]
    assert event.type == "registry.institution.created" and event.source == "/registry"
    assert (
        event.data["code"] == "H1" and event.data["tier"] == "county" and event.data["region_code"] == COUNTY
    )
    assert await unpublished(registry_engine) == 0


async def test_relay_killed_mid_publish_loses_nothing(
    clean_registry: None, registry_engine: AsyncEngine
) -> None:
    topic = f"test.relay-kill.{uuid.uuid4().hex[:8]}"
    total = 20_000
    db = Database(REGISTRY_DB)
    ids: set[str] = set()
    async with db.uow() as uow:
        rows = []
        for i in range(total):
            event = EventEnvelope(type="test.tick", source="/test", subject=f"tick/{i}", data={"i": i})
            ids.add(event.id)
            rows.append(
                {
                    "event_id": uuid.UUID(event.id),
                    "topic": topic,
                    "key": str(i % 50),
                    "payload": event.model_dump(mode="json"),
                }
            )
        await uow.session.execute(outbox.insert(), rows)
        await record_event(
            uow.session,
            outbox,
            topic,
            "last",
            EventEnvelope(type="test.tick", source="/test", subject="tick/last", data={}),
        )
        await uow.commit()
    await db.dispose()
    env = {
        **os.environ,
        "DATABASE_URL": REGISTRY_DB,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "LOG_LEVEL": "WARNING",
        "PII_KEY": TEST_PII_KEY,
    }
    relay = subprocess.Popen([sys.executable, "-m", "services.registry", "relay"], env=env)
    try:
        for _ in range(600):  # wait until it is part-way through
            left = await unpublished(registry_engine)
            if left < total:
                break
            await asyncio.sleep(0.05)
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
    finally:
        if relay.poll() is None:
            relay.kill()
    left_after_kill = await unpublished(registry_engine)
    assert 0 < left_after_kill < total + 1, f"kill landed outside the publish ({left_after_kill} left)"
    restarted = subprocess.Popen([sys.executable, "-m", "services.registry", "relay"], env=env)
    try:
        for _ in range(1200):
            if await unpublished(registry_engine) == 0:
                break
            await asyncio.sleep(0.05)
        assert await unpublished(registry_engine) == 0
    finally:
        restarted.terminate()
        restarted.wait(10)
    events = await collect(KAFKA, topic, lambda evs: ids <= {e.id for e in evs}, seconds=60)
    received = {e.id for e in events}
    assert ids <= received, f"{len(ids - received)} events lost"
    # per key, events arrive in the order they were written (duplicates from the kill aside)
    firsts: dict[str, int] = {}
    order = [
        int(e.data["i"])
        for e in events
        if "i" in e.data and e.id not in firsts and not firsts.setdefault(e.id, 1)
    ]
    by_key: dict[int, list[int]] = {}
    for i in order:
        by_key.setdefault(i % 50, []).append(i)
    assert all(seq == sorted(seq) for seq in by_key.values())
