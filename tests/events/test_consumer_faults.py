"""A database outage in the middle of consuming is a fault, not poison: nothing goes to the dead-letter
topic, the consumer backs off and resumes from the first unapplied record, and every event takes effect
exactly once. The outage is real: the consumer reaches PostgreSQL through a TCP relay that this test cuts
(every open connection dropped, new ones refused) for two seconds, as a database restart would."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.registry.models import inbox
from shared.consumer import IdempotentConsumer
from shared.db import Database
from shared.topics import ensure_topics

from ..conftest import KAFKA, REGISTRY_DB
from ..eventually import eventually
from .test_idempotent_consumer import (  # noqa: F401
    effect_rows,
    effects,
    event,
    produce,
    record_effect,
    run_until,
)


class CuttableLink:
    """A TCP relay to PostgreSQL that can be cut: `cut()` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.up = False
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    def restore(self) -> None:
        self.up = True

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


async def dead_letters(topic: str) -> int:
    dlt = AIOKafkaConsumer(
        f"{topic}.dlt",
        bootstrap_servers=KAFKA,
        group_id=f"d-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await dlt.start()
    try:
        return sum(len(rs) for rs in (await dlt.getmany(timeout_ms=1500)).values())
    finally:
        await dlt.stop()


async def test_a_database_outage_is_retried_never_dead_lettered(
    effects: str,  # noqa: F811
    registry_engine: AsyncEngine,
) -> None:
    topic = f"test.fault.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic, f"{topic}.dlt"])
    url = urlsplit(REGISTRY_DB.replace("postgresql+asyncpg", "http"))
    link = CuttableLink(url.hostname or "127.0.0.1", url.port or 5432)
    port = await link.start()
    db = Database(REGISTRY_DB.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{port}"))
    consumer = IdempotentConsumer(db, inbox, KAFKA, f"g-{uuid.uuid4().hex[:8]}", [topic], record_effect)
    events = [event(n) for n in range(1, 201)]
    task = asyncio.create_task(consumer.run_forever())
    try:
        await produce(topic, events[:100])
        await eventually(lambda: consumer.processed >= 100, "the first 100 applied")
        assert consumer.processed == 100
        link.cut()  # the database "restarts": connections die, new ones are refused
        await produce(topic, events[100:])
        await asyncio.sleep(2.0)
        assert consumer.faults >= 1 and consumer.dead_lettered == 0
        link.restore()
        await eventually(lambda: consumer.processed >= 200, "all 200 applied", 60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.stop()
        await db.dispose()
    rows = await effect_rows(registry_engine)
    assert [n for _, n in rows] == list(range(1, 201))  # every event once, none lost, none twice
    assert consumer.dead_lettered == 0 and await dead_letters(topic) == 0
    async with registry_engine.connect() as conn:
        assert (
            await conn.scalar(
                sa.text("SELECT count(*) FROM inbox WHERE consumer = :g"), {"g": consumer.group_id}
            )
            == 200
        )


async def test_replay_dlt_puts_a_fixed_record_back_once(
    effects: str,  # noqa: F811
    registry_engine: AsyncEngine,
) -> None:
    """A record the handler could not take goes to the DLT; once the cause is fixed, `replay-dlt` puts it
    back, the consumer applies it once, and a second replay sends nothing."""
    from shared.dlt import replay_dead_letters

    topic = f"test.replay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic, f"{topic}.dlt"])
    fixed = False

    async def handler(session: Any, e: Any) -> None:
        if e.data.get("poison") and not fixed:
            raise ValueError("this handler cannot take it yet")
        await record_effect(session, event(e.data["n"]).model_copy(update={"id": e.id}))

    bad, good = event(1, poison=True), event(2)
    await produce(topic, [bad, good])
    db = Database(REGISTRY_DB)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = IdempotentConsumer(db, inbox, KAFKA, group, [topic], handler)
    await run_until(first, check=lambda: _true(first.dead_lettered >= 1 and first.processed >= 1))
    assert [n for _, n in await effect_rows(registry_engine)] == [2]
    fixed = True  # the cause is fixed (a new release of the handler, say)
    assert await replay_dead_letters(KAFKA, topic) == 1
    assert await replay_dead_letters(KAFKA, topic) == 0  # the replay's own offsets: nothing twice
    second = IdempotentConsumer(db, inbox, KAFKA, group, [topic], handler)
    await run_until(second, check=lambda: _true(second.processed >= 1))
    await db.dispose()
    assert await effect_rows(registry_engine) == [(bad.id, 1), (good.id, 2)]  # each once


async def _true(value: bool) -> bool:
    return value
