"""Create a service's topics up front (with their dead-letter twins) instead of relying on the
broker's auto-create, so partitions are what we chose and the first publish does not wait."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 3, replication: int = 1
) -> list[str]:
    """Create missing topics; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in dict.fromkeys(names) if n not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them meanwhile
                await admin.create_topics([NewTopic(n, partitions, replication) for n in wanted])
        return wanted
    finally:
        await admin.close()
