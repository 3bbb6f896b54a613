"""Idempotent consumer: at-least-once delivery, effect-once processing.

For each message the handler's effect and an inbox row (consumer, event id) are written in one
transaction; a redelivered event finds its inbox row and changes nothing. Offsets are committed only
after the effect commits.

A fault (`shared.faults.is_transient`: the database or broker away, a timeout, a deadlock) is never the
record's fault: the consumer seeks back to the first unapplied record and tries again after a back-off,
for as long as it takes. Only a record that cannot be decoded, fails validation or breaks a domain rule
goes to `<topic>.dlt`, with the error in its headers, so it cannot block its partition; `replay-dlt`
puts it back once its cause is fixed.

Tracing (`shared.tracing`): each record is processed in a `process <topic>` span, a child of the trace
context its envelope carries, so one trace runs from the request that raised the event to its consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager

import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from shared import tracing
from shared.db import Database
from shared.events import EventEnvelope
from shared.faults import is_transient
from shared.metrics import ConsumerLag
from shared.outbox import make_producer

log = structlog.get_logger()
DEAD_LETTERED = Counter(
    "consumer_dead_lettered_total", "Records set aside to <topic>.dlt", ["group", "topic"]
)
FAULTS = Counter(
    "consumer_faults_total", "Faults (database/broker away) the consumer backed off from", ["group"]
)


class Fault(Exception):
    """A transient failure while applying a record: retry it later, never dead-letter it. `resume_at` is
    the first offset not yet applied or set aside (None: the start of the batch)."""

    resume_at: int | None = None


Handler = Callable[[AsyncSession, EventEnvelope], Awaitable[None]]


async def claim_event(
    session: AsyncSession, inbox: sa.Table, consumer: str, event_id: str, topic: str
) -> bool:
    """Record the event in the inbox; False when this consumer already processed it."""
    result = await session.execute(
        insert(inbox)
        .values(consumer=consumer, event_id=event_id, topic=topic)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return result.first() is not None


async def process_once(
    db: Database, inbox: sa.Table, consumer: str, topic: str, event: EventEnvelope, handler: Handler
) -> bool:
    """Apply `handler` unless already applied; effect and inbox row commit together."""
    async with db.uow() as uow:
        if not await claim_event(uow.session, inbox, consumer, event.id, topic):
            return False
        await handler(uow.session, event)
        await uow.commit()
        return True


class IdempotentConsumer:
    def __init__(
        self,
        db: Database,
        inbox: sa.Table,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        attempts: int = 3,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = list(topics)
        self.handler = handler
        self.attempts = attempts
        self.processed = 0
        self.dead_lettered = 0
        self.faults = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.lag_gauge = ConsumerLag(group_id)

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        self._producer = make_producer(self.bootstrap)
        await self._producer.start()
        await self._consumer.start()
        for topic in self.topics:  # series at 0, so increase() sees the first dead letter
            DEAD_LETTERED.labels(self.group_id, topic)
        FAULTS.labels(self.group_id)

    async def stop(self) -> None:
        self.lag_gauge.clear()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def lag(self) -> int | None:
        """Messages not yet applied (committed offsets, which follow the effects) behind the end of the
        assigned partitions; None before an assignment."""
        if self._consumer is None or not self._consumer.assignment():
            return None
        parts = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(parts)
        behind = 0
        for tp in parts:
            behind += max(0, ends[tp] - (await self._consumer.committed(tp) or 0))
        return behind

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record; a fault propagates (the caller seeks back), bad data is dead-lettered."""
        try:
            event = EventEnvelope.from_bytes(record.value or b"")
            with self._processing(record, event):
                await self._apply(record, event)
        except Fault:
            raise
        except Exception as exc:
            await self._dead_letter(record, exc)

    async def _apply(self, record: ConsumerRecord[bytes, bytes], event: EventEnvelope) -> None:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(0.05, max=1),
            # never retry a Fault (the caller backs off) nor a cancellation (shutdown must proceed)
            retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(Fault),
            reraise=True,
        ):
            with attempt:
                try:
                    applied = await process_once(
                        self.db, self.inbox, self.group_id, record.topic, event, self.handler
                    )
                except Exception as exc:
                    if is_transient(exc):
                        raise Fault(exc) from exc
                    raise
                if applied:
                    self.processed += 1

    def _processing(
        self, record: ConsumerRecord[bytes, bytes], event: EventEnvelope
    ) -> AbstractContextManager[object]:
        """The record's CONSUMER span, a child of the context its envelope carries (the `create` span of
        the producing service), current while the handler runs, so the events it raises continue the
        trace. Off: the envelope's context only, made current; nothing at all for an event without one."""
        parent = tracing.extract(event.traceparent, event.tracestate)
        if not tracing.enabled():
            return contextlib.nullcontext() if parent is None else tracing.attached(parent)
        return tracing.span(
            f"process {record.topic}",
            SpanKind.CONSUMER,
            parent=parent or tracing.ROOT,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": event.id,
                "cloudevents.event_type": event.type,
            },
        )

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception) -> None:
        assert self._producer is not None
        log.error("event_dead_lettered", topic=record.topic, offset=record.offset, error=repr(exc))
        headers = [
            ("error", repr(exc)[:1000].encode()),
            ("original_topic", record.topic.encode()),
            ("original_offset", str(record.offset).encode()),
            ("consumer", self.group_id.encode()),
        ]
        try:
            await self._producer.send_and_wait(
                f"{record.topic}.dlt", value=record.value, key=record.key, headers=headers
            )
        except Exception as exc:  # the offset must not move past a record that is neither applied nor kept
            raise Fault(exc) from exc
        self.dead_lettered += 1
        DEAD_LETTERED.labels(self.group_id, record.topic).inc()

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a partition's batch in one transaction (fast catch-up); if anything in it fails, roll
        back and take the records one by one, so only the bad one is retried and dead-lettered."""
        try:
            events = [EventEnvelope.from_bytes(r.value or b"") for r in records]
            applied = 0
            async with self.db.uow() as uow:
                for record, event in zip(records, events, strict=True):
                    with self._processing(record, event):
                        if await claim_event(uow.session, self.inbox, self.group_id, event.id, record.topic):
                            await self.handler(uow.session, event)
                            applied += 1
                await uow.commit()
            self.processed += applied
        except Exception as exc:
            if is_transient(exc):
                raise Fault(exc) from exc
            for record in records:
                try:
                    await self.handle(record)
                except Fault as fault:  # those before it are applied or dead-lettered: not again
                    fault.resume_at = record.offset
                    raise

    async def run(self) -> None:
        """Consume until cancelled; offsets committed after each batch's effects. After a fault every
        partition of the poll goes back to its first unapplied record, and the next poll waits a back-off."""
        assert self._consumer is not None
        backoff = 0.0
        while True:
            if backoff:
                await asyncio.sleep(backoff)
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            pending = list(batches.items())
            try:
                while pending:
                    tp, records = pending[0]
                    await self.handle_batch(records)
                    await self._consumer.commit({tp: records[-1].offset + 1})
                    pending.pop(0)
                backoff = 0.0
            except Fault as fault:
                for i, (tp, records) in enumerate(pending):
                    resume = fault.resume_at if i == 0 and fault.resume_at is not None else records[0].offset
                    self._consumer.seek(tp, resume)
                backoff = min(max(backoff * 2, 0.5), 30.0)
                self.faults += 1
                FAULTS.labels(self.group_id).inc()
                log.warning(
                    "consumer_fault_retrying",
                    group=self.group_id,
                    error=repr(fault.__cause__)[:300],
                    retry_in=backoff,
                )
            await self.lag_gauge.update(self._consumer)

    async def run_forever(self) -> None:
        """Start, run, and restart after a broker or database failure."""
        while True:
            try:
                await self.start()
                await self.run()
            except asyncio.CancelledError:
                with contextlib.suppress(
                    Exception
                ):  # bounded: a broker that is away must not hold up SIGTERM
                    await asyncio.wait_for(self.stop(), 2)
                raise
            except Exception as exc:
                log.warning("consumer_error", group=self.group_id, error=repr(exc))
                with contextlib.suppress(Exception):
                    await self.stop()
                await asyncio.sleep(1.0)


__all__ = ["Handler", "IdempotentConsumer", "claim_event", "process_once"]
