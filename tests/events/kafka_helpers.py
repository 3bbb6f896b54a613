"""Reading what really reached the broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from shared.events import EventEnvelope


async def collect(
    bootstrap: str,
    topic: str | list[str],
    until: Callable[[list[EventEnvelope]], bool],
    seconds: float = 30.0,
) -> list[EventEnvelope]:
    """Read the topic(s) from the beginning with a fresh group until `until(events)` holds or time runs out."""
    consumer = AIOKafkaConsumer(
        *([topic] if isinstance(topic, str) else topic),
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    events: list[EventEnvelope] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not until(events):
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                events += [EventEnvelope.from_bytes(r.value) for r in records if r.value is not None]
    finally:
        await consumer.stop()
    return events
