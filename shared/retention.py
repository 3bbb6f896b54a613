"""Retention: the background job that keeps the platform tables from growing for ever.

- **Idempotency keys** older than the TTL (24 h): they already count as absent (shared/idempotency.py).
- **Published outbox rows** older than `OUTBOX_RETENTION_SECONDS` (7 days): they are in Kafka already and
  only help someone reading back what was sent. A row not yet published is never deleted, however old.
- **Inbox rows** older than `INBOX_RETENTION_SECONDS` (30 days). An inbox row is what makes a redelivered
  event change nothing; once it is gone, the same event delivered again would be applied again. So the
  window must stay well above any redelivery or replay the group can see: the Kafka retention of the
  topics it consumes (Kafka's default is 7 days), plus the longest a consumer may stay down or behind, plus
  a replay of a dead-letter topic. (The read-model handlers are also version-guarded upserts, which a
  late duplicate does not change; a handler with another kind of effect relies on the inbox alone.)

A window of 0 or less keeps those rows for ever. Deletes go in bounded batches, each its own short
transaction, so a backlog never becomes one huge transaction or long lock; rows someone else holds right
now are skipped, not waited for. Every replica may run it: SKIP LOCKED keeps them out of each other's way.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
import structlog
from prometheus_client import Counter

from shared.db import Database
from shared.idempotency import expired
from shared.tables import add_platform_tables

log = structlog.get_logger()
BATCH = 1_000
PERIOD_SECONDS = 600.0
OUTBOX, INBOX, IDEMPOTENCY_KEYS = add_platform_tables(sa.MetaData())
TABLES = ("idempotency_keys", "outbox", "inbox")
CTID: sa.ColumnClause[object] = sa.literal_column("ctid")
DELETED = Counter("retention_deleted_rows_total", "Rows the retention job deleted", ["table"])
FAILURES = Counter(
    "retention_failures_total", "Retention passes that failed (tried again next period)", ["table"]
)
for _table in TABLES:  # the series exist (at 0) before the first deletion or failure
    DELETED.labels(_table)
    FAILURES.labels(_table)


def older_than(column: sa.ColumnElement[object], seconds: int) -> sa.ColumnElement[bool]:
    """`column` before now minus `seconds`, by the database's clock (the one that stamped the rows)."""
    return column < sa.func.now() - sa.literal(timedelta(seconds=seconds), sa.Interval)


async def delete_in_batches(
    db: Database, table: sa.Table, condition: sa.ColumnElement[bool], batch: int
) -> int:
    """Delete the rows matching `condition`, `batch` per statement (each its own transaction) until a
    statement deletes fewer; returns how many. Each statement takes its rows with a scan that stops at
    `batch` (SKIP LOCKED) and deletes them by physical address (ctid: a TID scan, where a join on the
    key would read the whole table every time)."""
    victims = (
        sa.select(CTID).select_from(table).where(condition).limit(batch).with_for_update(skip_locked=True)
    )
    total = 0
    while True:
        async with db.engine.begin() as conn:
            deleted = (await conn.execute(table.delete().where(CTID.in_(victims)))).rowcount
        total += deleted
        if deleted < batch:
            return total


async def purge_expired_keys(db: Database, ttl: int, batch: int = BATCH) -> int:
    """Delete expired Idempotency-Key replies; returns how many."""
    return await delete_in_batches(db, IDEMPOTENCY_KEYS, expired(IDEMPOTENCY_KEYS, ttl), batch)


async def purge_published_outbox(db: Database, keep_seconds: int, batch: int = BATCH) -> int:
    """Delete outbox rows published more than `keep_seconds` ago; returns how many.

    The relay publishes in `seq` order, so the old published rows are the front of the table: each step
    reads the next `batch` rows by primary key and deletes the leading run of old published ones, and the
    job stops at the first row that is unpublished or recent. No step ever scans the table (there is no
    index on `published_at`), and an unpublished row, which everything after it waits behind, is never
    touched. A row a little out of order (published just after a later one) goes next period."""
    t = OUTBOX
    old = older_than(t.c.published_at, keep_seconds)  # NULL (false) for an unpublished row
    after, total = 0, 0
    while True:
        async with db.engine.begin() as conn:
            chunk = (
                await conn.execute(
                    sa.select(t.c.seq, old.label("old")).where(t.c.seq > after).order_by(t.c.seq).limit(batch)
                )
            ).all()
            leading = 0
            while leading < len(chunk) and chunk[leading].old:
                leading += 1
            if not leading:  # the first row left is unpublished or recent (or there is none)
                return total
            last = chunk[leading - 1].seq
            victims = (
                sa.select(t.c.seq)
                .where(t.c.seq > after, t.c.seq <= last, old)
                .with_for_update(skip_locked=True)
            )
            span = (t.c.seq > after, t.c.seq <= last)  # on the outer DELETE too: an index range, no scan
            total += (await conn.execute(t.delete().where(*span, t.c.seq.in_(victims)))).rowcount
        if leading < batch:  # reached a row to keep, or the end of the table
            return total
        after = last


async def purge_inbox(db: Database, keep_seconds: int, batch: int = BATCH) -> int:
    """Delete inbox rows processed more than `keep_seconds` ago; returns how many. (No index on
    `processed_at`: the oldest rows lie at the front of the heap, where each statement's scan finds them.)"""
    return await delete_in_batches(db, INBOX, older_than(INBOX.c.processed_at, keep_seconds), batch)


async def purge_once(
    db: Database, ttl: int, outbox_seconds: int = 0, inbox_seconds: int = 0
) -> dict[str, int]:
    """One pass over the three tables (a window of 0 or less skips a table). A failure on one table is
    logged and counted, and does not keep the others from being purged. Returns the rows deleted."""
    jobs = {
        "idempotency_keys": (purge_expired_keys, ttl),
        "outbox": (purge_published_outbox, outbox_seconds),
        "inbox": (purge_inbox, inbox_seconds),
    }
    deleted: dict[str, int] = {}
    for table, (purge, seconds) in jobs.items():
        if seconds <= 0:
            continue
        try:
            deleted[table] = await purge(db, seconds)
        except Exception as exc:  # the database may be restarting; try again next time
            FAILURES.labels(table).inc()
            log.warning("retention_error", table=table, error=repr(exc)[:300])
            continue
        DELETED.labels(table).inc(deleted[table])
    if any(deleted.values()):
        log.info("retention_purged", **deleted)
    return deleted


async def purge_forever(
    db: Database,
    ttl: int,
    period: float = PERIOD_SECONDS,
    *,
    outbox_seconds: int = 0,
    inbox_seconds: int = 0,
) -> None:
    """The background worker: purge, then sleep `period`; a failure is logged and retried next time."""
    while True:
        await purge_once(db, ttl, outbox_seconds, inbox_seconds)
        await asyncio.sleep(period)
