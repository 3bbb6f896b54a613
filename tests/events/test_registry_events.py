"""Registry changes reach Kafka through the outbox (as their contracts say: a resident's event carries no
name), events raised in a unit of work are written at its commit and only then, and nothing is lost when
the relay dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.models import outbox
from shared import contracts
from shared.contracts import registry as reg
from shared.db import Database, EventsNotWritten, collect
from shared.events import EventEnvelope, OutgoingEvent
from shared.outbox import OutboxRelay, record_event

from ..conftest import KAFKA, REGISTRY_DB, TEST_PII_KEY
from ..eventually import eventually
from ..integration.county import COUNTY, add_resident, build_county
from .kafka_helpers import collect as read_topic


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
        events = await read_topic(
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


async def test_a_resident_change_reaches_kafka_without_the_residents_name(client: AsyncClient) -> None:
    """The resident topic carries contract version 2: what referral and billing need, no name, no masked
    national ID or phone, no key-population flags (issue #13)."""
    c = await build_county(client)
    resident = await add_resident(client, c, key_populations=["chronic_disease"])
    renamed = await client.patch(
        f"/v1/residents/{resident['id']}", json={"name": "赵改名", "version": resident["version"]}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "赵改名"  # the API still shows the name: only the topic changed
    await OutboxRelay(REGISTRY_DB, KAFKA).drain()
    subject = f"resident/{resident['id']}"
    events = await read_topic(
        KAFKA, "registry.residents", lambda evs: sum(e.subject == subject for e in evs) >= 2
    )
    mine = [e for e in events if e.subject == subject]
    assert [e.type for e in mine] == ["registry.resident.created", "registry.resident.updated"]
    for e in mine:
        raw = e.to_bytes().decode()
        for personal in (
            "赵居民",
            "赵改名",
            resident["national_id_masked"],
            resident["phone_masked"],
            "chronic",
        ):
            assert personal not in raw
        assert e.schemaversion == 2 and set(e.data) == set(reg.ResidentV2.model_fields)
        data = contracts.decode(e)
        assert isinstance(data, reg.Resident) and str(data.community_id) == c.community["id"]
    assert [e.data["version"] for e in mine] == [resident["version"], renamed.json()["version"]]


def tick_event(topic: str, key: str) -> OutgoingEvent:
    return OutgoingEvent(topic, key, EventEnvelope(type="test.uow", source="/test", subject=key, data={}))


async def outbox_rows(engine: AsyncEngine, topic: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT key FROM outbox WHERE topic = :t ORDER BY seq"), {"t": topic}
        )
        return [r[0] for r in rows]


async def test_the_unit_of_work_writes_raised_events_at_commit_and_only_then(
    registry_db: str, registry_engine: AsyncEngine
) -> None:
    topic = f"test.uow.{uuid.uuid4().hex[:8]}"
    db = Database(REGISTRY_DB)
    try:
        async with db.uow() as uow:  # raised, then rolled back (an error in the use case): nothing written
            collect(uow.session, tick_event(topic, "rolled-back"))
            assert [e.key for e in uow.events] == ["rolled-back"]
        async with db.uow() as uow:
            collect(uow.session, tick_event(topic, "a"), tick_event(topic, "b"))
            uow.collect(tick_event(topic, "c"))
            in_tx = await uow.session.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.topic == topic)
            )
            assert in_tx == 0  # not yet: the outbox rows are written right before the commit
            await uow.commit()
            assert uow.events == []
        assert await outbox_rows(registry_engine, topic) == ["a", "b", "c"]  # in the order raised
        async with db.uow() as uow:  # a commit that bypasses the unit of work would lose the event: refused
            collect(uow.session, tick_event(topic, "bypassed"))
            with pytest.raises(EventsNotWritten):
                await uow.session.commit()
        assert await outbox_rows(registry_engine, topic) == ["a", "b", "c"]
    finally:
        await db.dispose()


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
        await eventually(
            lambda: _drained(registry_engine), "the restarted relay published the rest", 60, every=0.05
        )
    finally:
        restarted.terminate()
        restarted.wait(10)
    events = await read_topic(KAFKA, topic, lambda evs: ids <= {e.id for e in evs}, seconds=60)
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


async def _drained(engine: AsyncEngine) -> bool:
    return await unpublished(engine) == 0
