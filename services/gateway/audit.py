"""The personal-data audit, written so that it neither loses a row nor fails a request.

Every call to a personal-data route is recorded, whatever the upstream answered. Writing the row in the
request would turn an audit hiccup into an error for a write that already happened (which the client then
retries), so rows go to a bounded in-process queue that a background task flushes in batches. A flush that
fails keeps its rows and is retried with back-off; the queue's depth, the age of its oldest row and the failed
flushes are Prometheus metrics an alert can watch. When the queue is full the gateway refuses new
personal-data calls (503) before forwarding them: nothing is read or changed without its row. On shutdown the
queue is drained (bounded in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Gauge

from shared.db import Database
from shared.faults import sqlstate

from . import models as m

log = structlog.get_logger()

QUEUE_DEPTH = Gauge("gateway_audit_queue_depth", "Audit rows waiting to be written")
OLDEST_AGE = Gauge("gateway_audit_oldest_seconds", "Age of the oldest audit row waiting to be written")
FLUSH_FAILURES = Counter(
    "gateway_audit_flush_failures_total", "Audit flushes that failed and will be retried"
)
DROPPED = Counter("gateway_audit_rows_refused_total", "Audit rows the database refused (logged in full)")
WRITTEN = Counter("gateway_audit_rows_written_total", "Audit rows written to the database")


def row_refused(exc: BaseException) -> bool:
    """The database refused this row's data (SQLSTATE 22, 23), not the write as such (a missing table, a
    lost connection): only such a row is set aside, logged in full."""
    return sqlstate(exc)[:2] in ("22", "23")


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    subject: str
    role: str
    institution_id: uuid.UUID | None
    method: str
    path: str
    status: int
    request_id: str | None


class AuditWriter:
    def __init__(
        self, db: Database, capacity: int = 100_000, batch: int = 500, interval: float = 0.2
    ) -> None:
        self.db = db
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self._queue: deque[tuple[float, AuditRecord]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def has_room(self) -> bool:
        return len(self._queue) < self.capacity

    @property
    def pending(self) -> int:
        return len(self._queue)

    def record(self, entry: AuditRecord) -> None:
        """Queue a row (never raises, never waits); the flusher starts with the first row."""
        self._queue.append((time.monotonic(), entry))
        QUEUE_DEPTH.set(len(self._queue))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")
        if len(self._queue) >= self.batch:
            self._wake.set()

    async def flush(self) -> int:
        """Write up to one batch; on failure the rows stay queued, in order, and the error propagates."""
        taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        if not taken:
            return 0
        try:
            async with self.db.uow() as uow:
                await uow.session.execute(sa.insert(m.AuditEntry), [asdict(r) for _, r in taken])
                await uow.commit()
        except BaseException:
            self._queue.extendleft(reversed(taken))
            raise
        WRITTEN.inc(len(taken))
        return len(taken)

    async def _run(self) -> None:
        backoff = self.interval
        while True:
            self._report()
            try:
                while await self.flush():
                    pass
                backoff = self.interval
            except Exception as exc:  # the database is down or refuses: keep the rows, try again later
                if row_refused(exc):  # a row the table refuses must not block every row behind it
                    await self._write_one_by_one()
                FLUSH_FAILURES.inc()
                log.warning("audit_flush_failed", pending=len(self._queue), error=repr(exc)[:300])
                backoff = min(backoff * 2, 10.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)

    async def _write_one_by_one(self) -> None:
        """After a refusal that is not a fault: write the next batch row by row, dropping (and logging in
        full) any row the database refuses, so one bad row cannot stop the audit."""
        for _ in range(min(self.batch, len(self._queue))):
            _, entry = self._queue.popleft()
            try:
                async with self.db.uow() as uow:
                    await uow.session.execute(sa.insert(m.AuditEntry), [asdict(entry)])
                    await uow.commit()
                WRITTEN.inc()
            except Exception as exc:
                if not row_refused(exc):  # the table itself is away or locked: keep the row, retry later
                    self._queue.appendleft((time.monotonic(), entry))
                    return
                DROPPED.inc()
                log.error("audit_row_refused", row=repr(entry), error=repr(exc)[:300])

    def _report(self) -> None:
        QUEUE_DEPTH.set(len(self._queue))
        OLDEST_AGE.set(time.monotonic() - self._queue[0][0] if self._queue else 0.0)

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Stop the flusher and write what is queued, giving up (and saying so) after `drain_seconds`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        deadline = time.monotonic() + drain_seconds
        while self._queue and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.flush(), max(0.1, deadline - time.monotonic()))
            except Exception:
                await asyncio.sleep(0.2)
        if self._queue:
            log.error("audit_rows_unwritten_at_shutdown", count=len(self._queue))
