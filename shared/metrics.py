"""Consumer lag for the operator, per consumer group, topic and partition.

Metrics are module-level objects, created once per process: prometheus_client's default registry (the one
each service's /metrics exposes) refuses a second metric of the same name, and tests build several apps in
one process. The outbox's metrics live in shared/outbox.py, the retention job's in shared/retention.py, the
consumer's dead-letter and fault counters in shared/consumer.py.

`ConsumerLag.update` is meant to be called by the consumer loop on every turn: it does nothing until
`every` seconds have passed since its last report, and then reads only what the Kafka client already knows
locally — the partition's high-water mark from the last fetch response and the consumer's position (the
next record it will hand out) — so it never makes a broker round trip and never slows the loop. Called
between two polls, after the poll's records were applied and committed (or, after a fault, sought back to
the first unapplied one), the position is exactly the first record not yet applied, so the gauge is the
number of records the group still has to apply on that partition (as of the last fetch). Partitions the
consumer no longer owns after a rebalance are removed from the gauge, so a moved partition is not reported
twice or frozen at an old value.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from prometheus_client import Gauge

CONSUMER_LAG = Gauge(
    "consumer_lag_records",
    "Records on the partition not yet applied by the consumer group (high-water mark minus position)",
    ["group", "topic", "partition"],
)
LAG_REPORT_SECONDS = 5.0
POSITION_WAIT_SECONDS = 0.05  # a position being reset (offset out of range) is skipped, not waited for


class ConsumerLag:
    """The lag gauge of one consumer (one group, the partitions it is assigned)."""

    def __init__(self, group: str, every: float = LAG_REPORT_SECONDS) -> None:
        self.group = group
        self.every = every
        self._next_at = 0.0
        self._reported: set[tuple[str, int]] = set()

    async def update(self, consumer: Any, force: bool = False) -> None:
        """Report the lag of every assigned partition (an `AIOKafkaConsumer`), at most every `every` s."""
        now = time.monotonic()
        if not force and now < self._next_at:
            return
        self._next_at = now + self.every
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        for (topic, partition), tp in assigned.items():
            highwater = consumer.highwater(tp)
            if highwater is None:  # nothing fetched yet on this partition since the assignment
                continue
            try:
                async with asyncio.timeout(POSITION_WAIT_SECONDS):
                    position = await consumer.position(tp)  # local unless the position is being reset
            except Exception:  # timed out, or the partition was revoked meanwhile
                continue
            CONSUMER_LAG.labels(self.group, topic, str(partition)).set(max(0, highwater - position))
            self._reported.add((topic, partition))
        owned = set(assigned)
        for topic, partition in self._reported - owned:  # moved to another consumer by a rebalance
            self._remove(topic, partition)
        self._reported &= owned

    def clear(self) -> None:
        """Forget every partition this consumer reported (call it when the consumer stops)."""
        for topic, partition in self._reported:
            self._remove(topic, partition)
        self._reported = set()
        self._next_at = 0.0

    def _remove(self, topic: str, partition: int) -> None:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(self.group, topic, str(partition))
