"""Transactional outbox: events are rows written with the state change, and a relay publishes them.

The relay takes a PostgreSQL advisory lock so only one relay per database publishes at a time; that
keeps one aggregate's events in order even with several replicas. It publishes with acks=all and the
idempotent producer, marks the rows published only after Kafka acknowledged them, and so can only
duplicate (never lose) an event if it dies in between: consumers de-duplicate by event id.

Per-key order: the relay publishes by `seq`, but a bigserial is drawn at insert, not at commit, so two
transactions writing the same key could commit in the opposite order to their seqs. `record_events` therefore
first takes a transaction-scoped advisory lock on the key's bucket (one of `KEY_BUCKETS`); a second writer
of the key waits there until the first commits or rolls back, so per key seq order is commit order, and
the same aggregate (same key, same partition) is published in commit order end to end.

Metrics (label `database`, the service's database): `outbox_unpublished_events` and
`outbox_oldest_unpublished_age_seconds`, measured by `watch_outbox` with one cheap query every
`WATCH_SECONDS` in every process (also on replicas whose relay is standing by, so the figure never goes
stale with the lock holder); `outbox_publish_errors_total` (relay passes that failed: broker or database
unreachable, a send not acknowledged — the relay retries) and `outbox_events_published_total`.

Tracing (`shared.tracing`, when on): each batch is a `publish` span linked to the `create` span of every
event in it (the context its envelope carries; OpenTelemetry keeps the first 128 links of a span).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.db import Database
from shared.events import EventEnvelope

log = structlog.get_logger()
RELAY_LOCK_ID = 0x59475449  # "YGTI", the one-bigint form of pg_advisory_lock
KEY_LOCK_NAMESPACE = 0x59474B59  # "YGKY", the two-int4 form: never collides with the relay's lock
KEY_BUCKETS = 4096  # a power of two; bounded, so no load can fill the lock table with key locks
# one statement locks every bucket a commit needs, in ascending order (unnest keeps the array's order): two
# commits never take two buckets in opposite orders, so key locks cannot deadlock each other
KEY_LOCK_SQL = sa.text(
    "SELECT count(pg_advisory_xact_lock(:namespace, b)) FROM unnest(CAST(:buckets AS integer[])) AS b"
)
WATCH_SECONDS = 15.0

BACKLOG = Gauge("outbox_unpublished_events", "Outbox rows not yet published to Kafka", ["database"])
OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published to Kafka (0 when there is none)",
    ["database"],
)
PUBLISH_ERRORS = Counter(
    "outbox_publish_errors_total",
    "Outbox relay passes that failed (broker or database unreachable, a send not acknowledged); retried",
    ["database"],
)
PUBLISHED = Counter(
    "outbox_events_published_total", "Outbox rows published and acknowledged by Kafka", ["database"]
)
BACKLOG_SQL = sa.text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
    " FROM outbox WHERE published_at IS NULL"
)


def key_bucket(key: str) -> int:
    """The lock bucket of an event key (stable across processes and releases: CRC-32, not `hash()`)."""
    return zlib.crc32(key.encode()) & (KEY_BUCKETS - 1)


async def record_events(
    session: AsyncSession, outbox: sa.Table, events: Sequence[tuple[str, str, EventEnvelope]]
) -> None:
    """Add `(topic, key, event)`s to the outbox inside the caller's transaction, in commit order per key.

    First the transaction locks the buckets of all the keys (`pg_advisory_xact_lock`, held until commit or
    rollback), in one statement and in ascending order, so a concurrent writer of the same key draws its
    seq only after this one has committed: the relay's `ORDER BY seq` is then commit order per key. Because
    every commit takes its buckets in the same global order, key locks never deadlock each other (a
    deadlock with row locks is still possible: 40P01, a transient fault, 409 with Retry-After). Two keys
    may share a bucket and wait needlessly, never wrongly; waiting counts against `lock_timeout` (55P03).
    Then one INSERT writes the rows in the order given (their seqs follow it).
    """
    if not events:
        return
    buckets = sorted({key_bucket(key) for _, key, _ in events})
    await session.execute(KEY_LOCK_SQL, {"namespace": KEY_LOCK_NAMESPACE, "buckets": buckets})
    await session.execute(
        outbox.insert().values(
            [
                {
                    "event_id": uuid.UUID(e.id),
                    "topic": topic,
                    "key": key,
                    "payload": e.model_dump(mode="json"),
                }
                for topic, key, e in events
            ]
        )
    )


async def record_event(
    session: AsyncSession, outbox: sa.Table, topic: str, key: str, event: EventEnvelope
) -> None:
    """One event: `record_events` with one."""
    await record_events(session, outbox, [(topic, key, event)])


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=15000,
    )


class OutboxRelay:
    """Publishes outbox rows to Kafka in seq order, which per key is commit order (see `record_event`)."""

    def __init__(self, database_url: str, bootstrap: str, batch_size: int = 500, poll_seconds: float = 0.2):
        self.dsn = asyncpg_dsn(database_url)
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.published = 0
        self.database = make_url(database_url).database or ""
        PUBLISH_ERRORS.labels(self.database)  # the series exists (at 0) before the first error
        self._wake = asyncio.Event()
        self._stopping = False

    async def publish_pending(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        """One batch: send every unpublished row, wait for all acks, then mark them published."""
        rows = await conn.fetch(
            "SELECT seq, topic, key, payload, payload->>'traceparent' AS traceparent,"
            " payload->>'tracestate' AS tracestate"
            " FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1",
            self.batch_size,
        )
        if not rows:
            return 0
        with self._publishing(rows):
            futures = []
            for row in rows:
                payload: Any = row["payload"]
                value = payload.encode() if isinstance(payload, str) else bytes(payload)
                futures.append(await producer.send(row["topic"], value=value, key=row["key"].encode()))
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
        self.published += len(rows)
        PUBLISHED.labels(self.database).inc(len(rows))
        return len(rows)

    def _publishing(self, rows: list[asyncpg.Record]) -> AbstractContextManager[object]:
        """The batch's PRODUCER span (a trace of its own), linked to each event's `create` span; while
        tracing is off, nothing."""
        if not tracing.enabled():
            return contextlib.nullcontext()
        topics = sorted({r["topic"] for r in rows})
        return tracing.span(
            f"publish {topics[0]}" if len(topics) == 1 else "publish",
            SpanKind.PRODUCER,
            parent=tracing.ROOT,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.batch.message_count": len(rows),
                "messaging.destination.name": topics[0] if len(topics) == 1 else ",".join(topics),
                "db.namespace": self.database,
            },
            links=tracing.links((r["traceparent"], r["tracestate"]) for r in rows),
        )

    async def run(self) -> None:
        """Run until cancelled; reconnects after database or broker failures."""
        while not self._stopping:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                PUBLISH_ERRORS.labels(self.database).inc()
                log.warning("outbox_relay_error", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _run_once(self) -> None:
        conn = await asyncpg.connect(self.dsn, timeout=5, command_timeout=30)  # a half-dead socket
        producer = make_producer(self.bootstrap)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_ID):
                await asyncio.sleep(2.0)  # another replica is the relay
                return
            await conn.add_listener("outbox", lambda *_: self._wake.set())
            await producer.start()
            while not self._stopping:
                sent = await self.publish_pending(conn, producer)
                if sent < self.batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await conn.close()

    async def drain(self) -> int:
        """Publish everything pending now and return; for graceful shutdown and CLI use."""
        conn = await asyncpg.connect(self.dsn, timeout=5, command_timeout=30)  # a half-dead socket
        producer = make_producer(self.bootstrap)
        total = 0
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK_ID)
            await producer.start()
            while sent := await self.publish_pending(conn, producer):
                total += sent
        finally:
            await producer.stop()
            await conn.close()
        return total

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


async def measure_outbox(db: Database) -> tuple[int, float]:
    """Count the unpublished rows and the age of the oldest (by the database's clock), set the gauges and
    return both. One query on the partial index of unpublished rows: cheap while the relay keeps up."""
    async with db.engine.connect() as conn:
        count, age = (await conn.execute(BACKLOG_SQL)).one()
    database = db.engine.url.database or ""
    BACKLOG.labels(database).set(count)
    OLDEST_AGE.labels(database).set(float(age))
    return int(count), float(age)


async def watch_outbox(db: Database, period: float = WATCH_SECONDS) -> None:
    """Measure the outbox every `period` seconds until cancelled. While the database is unreachable the
    gauges keep their last value (the service is not ready then, and no event can be written either)."""
    while True:
        try:
            await measure_outbox(db)
        except Exception as exc:
            log.warning("outbox_metrics_error", error=repr(exc)[:300])
        await asyncio.sleep(period)
